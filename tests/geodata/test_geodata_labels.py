"""Vector labels -> pixel boxes: exact boxes on a rotated, sheared scene with labels in another
CRS, point boxes in metres (UTM, US feet, lon/lat), every drop reason counted, class selection."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from label_scenes import ROTATED, WIDTH, dense_oracle_box, pixel_polygon, write_labels, write_scene
from pyproj import Transformer

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.geodata.labels import load_label_set, load_scene_labels
from fsanet_geo.geodata.types import LabelCounts, LabelOptions, LabelSource

TO_LONLAT = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)


def lonlat_of_pixel(transform: Affine, col: float, row: float) -> tuple[float, float]:
    return TO_LONLAT.transform(*(transform @ (col, row)))


def test_polygons_lines_and_multipolygons_in_4326_map_to_exact_pixel_boxes(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")
    lon, lat = lonlat_of_pixel(ROTATED, 12, 9)
    rect = shapely.box(lon, lat, lon + 1e-4, lat + 6e-5)
    multi = shapely.MultiPolygon([shapely.box(lon + 1e-4, lat - 1e-4, lon + 1.3e-4, lat - 0.8e-4),
                                  shapely.box(lon - 1e-4, lat - 0.5e-4, lon - 0.8e-4, lat - 0.2e-4)])
    line = shapely.LineString([(lon, lat - 1e-4), (lon + 0.7e-4, lat - 0.6e-4), (lon + 0.2e-4, lat)])
    geoms = [rect, multi, line]
    labels = write_labels(tmp_path / "l.gpkg", geoms, "EPSG:4326", kind=["a", "b", "a"])
    result = load_scene_labels(LabelSource(str(scene), str(labels)), LabelOptions(class_field="kind"))
    assert result.counts == LabelCounts(read=3, kept=3)
    expected = np.array([dense_oracle_box(g, "EPSG:4326", "EPSG:32633", ROTATED) for g in geoms])
    assert (expected[:, :2] > 0).all() and (expected[:, 2] < WIDTH).all()  # all inside: none clipped
    np.testing.assert_allclose(result.boxes, expected, rtol=0, atol=1e-6)
    assert result.labels.tolist() == [0, 1, 0]
    assert result.boxes.dtype == np.float64 and result.labels.dtype == np.int64


def test_every_drop_reason_is_counted_once(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")  # columns 30.. are nodata
    rects = {
        "inside": (2, 3, 6, 7), "cut 60%": (-2, 10, 3, 14), "cut 55%": (-1.8, 16, 2.2, 20),
        "cut 40%": (-3, 20, 2, 24), "outside": (50, 5, 55, 9), "nodata": (31, 5, 35, 9),
        "half nodata": (28, 12, 33, 16), "thin": (10, 10, 10.5, 14), "ship": (10, 20, 14, 24),
        "no class": (12, 2, 16, 6), "cut thin": (-0.7, 25, 0.9, 29),
    }
    geoms = [pixel_polygon(ROTATED, *r) for r in rects.values()] + [None, shapely.Point(ROTATED @ (5, 5))]
    classes = ["car"] * len(rects) + ["car", "car"]
    classes[list(rects).index("ship")] = "ship"
    classes[list(rects).index("no class")] = None
    labels = write_labels(tmp_path / "l.gpkg", geoms, "EPSG:32633", cls=classes)
    result = load_scene_labels(LabelSource(str(scene), str(labels)), LabelOptions(class_field="cls", classes=("car",)))
    assert result.counts == LabelCounts(read=13, kept=4, clipped=2, outside=2, on_nodata=1, empty=4, other_class=1,
                                        points_refused=1)
    np.testing.assert_allclose(result.boxes, [[2, 3, 6, 7], [0, 10, 3, 14], [0, 16, 2.2, 20], [28, 12, 33, 16]],
                               atol=1e-6)
    assert result.labels.tolist() == [0, 0, 0, 0]


def test_points_need_point_box_and_become_squares_in_metres_in_utm(tmp_path: Path) -> None:
    north_up = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)
    scene = write_scene(tmp_path / "utm.tif", north_up, nodata_from_col=None)
    lonlat = [shapely.Point(lonlat_of_pixel(north_up, 10.25, 12.5)), shapely.Point(lonlat_of_pixel(north_up, 30, 3))]
    labels = write_labels(tmp_path / "pts.geojson", lonlat, "EPSG:4326")
    source = LabelSource(str(scene), str(labels))
    with pytest.raises(ConfigError, match=r"labels .*pts.geojson hold only points \(2\): give their box side with "
                                          r"--point-box METRES"):
        load_scene_labels(source, LabelOptions())
    result = load_scene_labels(source, LabelOptions(point_box=4.0))  # 4 m = 8 px
    np.testing.assert_allclose(result.boxes, [[6.25, 8.5, 14.25, 16.5], [26, 0, 34, 7]], atol=1e-6)
    assert result.counts == LabelCounts(read=2, kept=2, clipped=1)
    assert result.labels.tolist() == [0, 0]


def test_point_box_in_us_survey_feet(tmp_path: Path) -> None:
    feet = Affine(1, 0, 1_000_000, 0, -1, 200_000)  # EPSG:2263, NY Long Island, US survey feet
    scene = write_scene(tmp_path / "ft.tif", feet, "EPSG:2263", nodata_from_col=None)
    labels = write_labels(tmp_path / "p.gpkg", [shapely.Point(feet @ (20, 15))], "EPSG:2263")
    result = load_scene_labels(LabelSource(str(scene), str(labels)), LabelOptions(point_box=3.0))
    half = 1.5 / (1200 / 3937)  # metres -> US survey feet = pixels
    np.testing.assert_allclose(result.boxes, [[20 - half, 15 - half, 20 + half, 15 + half]], atol=1e-6)


def test_point_box_in_a_lonlat_scene_is_metres_at_the_point(tmp_path: Path) -> None:
    step = 1e-5
    geo = Affine(step, 0, 10.0, 0, -step, 60.0)
    scene = write_scene(tmp_path / "ll.tif", geo, "EPSG:4326", nodata_from_col=None)
    lon, lat = geo @ (20, 15)
    labels = write_labels(tmp_path / "p.gpkg", [shapely.Point(lon, lat)], "EPSG:4326")
    result = load_scene_labels(LabelSource(str(scene), str(labels)), LabelOptions(point_box=2.0))
    # WGS84 radii of curvature at the point: metres per degree along the parallel and the meridian
    a, e2, phi = 6378137.0, 0.00669437999014, math.radians(lat)
    w = 1 - e2 * math.sin(phi) ** 2
    m_per_deg_lon = math.radians(1) * a * math.cos(phi) / math.sqrt(w)
    m_per_deg_lat = math.radians(1) * a * (1 - e2) / w**1.5
    half_x, half_y = 1.0 / m_per_deg_lon / step, 1.0 / m_per_deg_lat / step
    np.testing.assert_allclose(result.boxes, [[20 - half_x, 15 - half_y, 20 + half_x, 15 + half_y]], atol=1e-5)
    assert 2 * half_x == pytest.approx(3.584, abs=1e-3)  # 1e-5 deg of longitude is 0.558 m at 60 N


def test_class_list_is_the_sorted_union_or_the_selection_in_its_order(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")
    a = write_labels(tmp_path / "a.gpkg", [pixel_polygon(ROTATED, 2, 2, 6, 6), pixel_polygon(ROTATED, 8, 2, 12, 6)],
                     "EPSG:32633", cls=["ship", "car"])
    b = write_labels(tmp_path / "b.gpkg", [pixel_polygon(ROTATED, 2, 2, 6, 6), pixel_polygon(ROTATED, 8, 2, 12, 6)],
                     "EPSG:32633", cls=["plane", "car"])
    sources = [LabelSource(str(scene), str(a)), LabelSource(str(scene), str(b))]
    union = load_label_set(sources, LabelOptions(class_field="cls"))
    assert union.class_names == ("car", "plane", "ship")
    assert [s.labels.tolist() for s in union.scenes] == [[2, 0], [1, 0]]
    assert union.num_objects == 4
    chosen = load_label_set(sources, LabelOptions(class_field="cls", classes=("ship", "car")))
    assert chosen.class_names == ("ship", "car")
    assert [s.labels.tolist() for s in chosen.scenes] == [[0, 1], [1]]
    assert chosen.scenes[1].counts == LabelCounts(read=2, kept=1, other_class=1)
    with pytest.raises(ConfigError, match=r"^--classes: 'truck' found in no label layer \(classes found: car, plane, "
                                          r"ship\)$"):
        load_label_set(sources, LabelOptions(class_field="cls", classes=("car", "truck")))
    single = load_label_set(sources[:1], LabelOptions())
    assert single.class_names == ("a",)  # no --class-field: one class named after the layer


def test_class_values_are_text_and_integer_codes_read_as_integers(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")
    labels = write_labels(tmp_path / "c.gpkg", [pixel_polygon(ROTATED, 2, 2, 6, 6), pixel_polygon(ROTATED, 8, 2, 12, 6),
                                                 pixel_polygon(ROTATED, 14, 2, 18, 6)],
                          "EPSG:32633", code=[3.0, 12.0, float("nan")])
    result = load_label_set([LabelSource(str(scene), str(labels))], LabelOptions(class_field="code"))
    assert result.class_names == ("12", "3")
    assert result.scenes[0].counts == LabelCounts(read=3, kept=2, empty=1)


def test_errors_name_the_file_and_the_problem(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")
    labels = write_labels(tmp_path / "l.gpkg", [pixel_polygon(ROTATED, 2, 2, 6, 6)], "EPSG:32633", layer="cars",
                          cls=["car"], note=["x"])
    source = LabelSource(str(scene), str(labels))
    with pytest.raises(ConfigError, match=r"^labels .*l.gpkg have no field 'kind' for --class-field \(fields: cls, "
                                          r"note\)$"):
        load_scene_labels(source, LabelOptions(class_field="kind"))
    with pytest.raises(DatasetError, match=r"have no layer 'trucks' \(layers: cars\)$"):
        load_scene_labels(LabelSource(str(scene), str(labels), layer="trucks"), LabelOptions())
    with pytest.raises(DatasetError, match=r"^labels .*nope.gpkg do not exist$"):
        load_scene_labels(LabelSource(str(scene), str(tmp_path / "nope.gpkg")), LabelOptions())
    (tmp_path / "text.gpkg").write_text("not a GeoPackage")
    with pytest.raises(DatasetError, match=r"^cannot read labels .*text.gpkg: not a vector format GDAL can read$"):
        load_scene_labels(LabelSource(str(scene), str(tmp_path / "text.gpkg")), LabelOptions())
    assert load_scene_labels(source, LabelOptions()).counts.kept == 1  # class "cars", the layer's name
    no_crs = write_labels(tmp_path / "nocrs.gpkg", [pixel_polygon(ROTATED, 2, 2, 6, 6)], None)
    with pytest.raises(ConfigError, match=r"^labels .*nocrs.gpkg have no CRS but scene .*rot.tif is in EPSG:32633"):
        load_scene_labels(LabelSource(str(scene), str(no_crs)), LabelOptions())
    plain = write_scene(tmp_path / "plain.tif", crs=None)
    with pytest.raises(ConfigError, match=r"^labels .*l.gpkg are in EPSG:32633 but scene .*plain.tif has no CRS"):
        load_scene_labels(LabelSource(str(plain), str(labels)), LabelOptions())
    with pytest.raises(ConfigError, match="^no scenes given"):
        load_label_set([], LabelOptions())


def test_scene_and_labels_without_crs_use_pixel_coordinates(tmp_path: Path) -> None:
    plain = write_scene(tmp_path / "plain.tif", crs=None)
    labels = write_labels(tmp_path / "px.gpkg", [shapely.box(3, 4, 9, 8), shapely.Point(5, 5)], None)
    result = load_scene_labels(LabelSource(str(plain), str(labels)), LabelOptions())
    np.testing.assert_allclose(result.boxes, [[3, 4, 9, 8]])
    assert result.counts == LabelCounts(read=2, kept=1, points_refused=1)
    with pytest.raises(ConfigError, match="--point-box needs georeferenced scenes"):
        load_scene_labels(LabelSource(str(plain), str(labels)), LabelOptions(point_box=2.0))


def test_aoi_is_stored_in_pixels_and_objects_centred_outside_it_are_outside(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "rot.tif")
    aoi = write_labels(tmp_path / "aoi.gpkg", [pixel_polygon(ROTATED, 0, 0, 15, 30)], "EPSG:32633", to_crs="EPSG:4326")
    labels = write_labels(tmp_path / "l.gpkg", [pixel_polygon(ROTATED, 3, 3, 7, 7), pixel_polygon(ROTATED, 13, 3, 19, 7),
                                                 pixel_polygon(ROTATED, 18, 3, 22, 7)], "EPSG:32633")
    result = load_scene_labels(LabelSource(str(scene), str(labels)), LabelOptions(), aoi=str(aoi))
    assert result.counts == LabelCounts(read=3, kept=1, outside=2)  # centres at columns 5, 16 and 20
    # the AOI went through lon/lat with straight edges there, so it comes back slightly bent
    np.testing.assert_allclose(result.labelled_area.bounds, (0, 0, 15, 30), atol=1e-3)
    assert result.labelled_area.area == pytest.approx(450, abs=1e-2)
