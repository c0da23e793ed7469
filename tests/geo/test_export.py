"""Vector export: every format written and read back, CRS handling, atomicity and overwrite rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from affine import Affine

from fsanet_geo.errors import FileOverwriteError, OutputError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.export import SUPPORTED_FORMATS, DetectionSink, open_sink, write_detections
from fsanet_geo.geo.outputs.georef import COLUMNS, to_geodataframe

UTM = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_000_000.0)
BOXES = np.array([[10.0, 20.0, 14.0, 30.0], [100.0, 50.0, 103.5, 52.0], [0.0, 0.0, 1.0, 1.0]])
CLASSES = ["vehicle", "ship"]


def detections_frame(boxes: np.ndarray = BOXES, scene: str = "a.tif", crs: str | None = "EPSG:32631"):
    n = len(boxes)
    dets = Detections(boxes, np.linspace(0.9, 0.5, n), np.arange(n) % 2)
    return to_geodataframe(dets, class_names=CLASSES, transform=UTM, crs=crs, scene=scene)


def utm_corners(box: np.ndarray) -> np.ndarray:
    """[4, 2] CRS corners of a pixel box, by hand: x = 500000 + 0.5 col, y = 4000000 - 0.5 row."""
    x0, y0, x1, y1 = box
    return np.array([(500_000.0 + 0.5 * c, 4_000_000.0 - 0.5 * r) for c, r in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]])


def same_corners(polygon: shapely.Polygon, expected: np.ndarray, atol: float) -> None:
    """The polygon's 4 corners are the expected ones (any order), each within atol."""
    coords = shapely.get_coordinates(polygon.exterior)[:-1]
    assert len(coords) == 4
    dist = np.abs(coords[:, None, :] - expected[None, :, :]).max(-1)
    assert dist.min(0).max() <= atol and dist.min(1).max() <= atol, (coords, expected)


def by_score(gdf):
    """Rows in decreasing score (FlatGeobuf reorders features along its spatial index)."""
    return gdf.sort_values("score", ascending=False, ignore_index=True)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".fgb"])
def test_vector_formats_keep_the_raster_crs(tmp_path: Path, suffix: str) -> None:
    path = write_detections(detections_frame(), tmp_path / f"out{suffix}")
    back = by_score(pyogrio.read_dataframe(path))
    assert len(back) == 3
    assert list(back.columns) == [*COLUMNS, "geometry"]
    assert back.crs.to_epsg() == 32631
    assert back["class_name"].tolist() == ["vehicle", "ship", "vehicle"]
    assert back["class_id"].tolist() == [0, 1, 0]
    assert back["score"].tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert back["scene"].tolist() == ["a.tif"] * 3
    np.testing.assert_allclose(back[["x_min", "y_min", "x_max", "y_max"]].to_numpy(float), BOXES)
    for polygon, box in zip(back.geometry, BOXES):
        same_corners(polygon, utm_corners(box), atol=1e-6)
    if suffix == ".shp":
        assert files_in(tmp_path) == ["out.cpg", "out.dbf", "out.prj", "out.shp", "out.shx"]
    else:
        assert files_in(tmp_path) == [f"out{suffix}"]


def test_geojson_is_rfc7946_wgs84_matching_pyproj(tmp_path: Path) -> None:
    path = write_detections(detections_frame(), tmp_path / "out.geojson")
    doc = json.loads(path.read_text())
    assert "crs" not in doc and doc["type"] == "FeatureCollection"
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326 and len(back) == 3
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    for polygon, box in zip(back.geometry, BOXES):
        corners = utm_corners(box)
        lon, lat = to_wgs84.transform(corners[:, 0], corners[:, 1])
        assert 2.9 < lon.min() < 3.1 and 36.1 < lat.min() < 36.2  # lon/lat order
        same_corners(polygon, np.c_[lon, lat], atol=1e-9)  # about 0.1 mm
        assert shapely.is_ccw(polygon.exterior)


def test_streamed_geojson_stays_rfc7946(tmp_path: Path) -> None:
    sink = DetectionSink(tmp_path / "out.geojson", crs="EPSG:32631", flush_rows=1)
    with sink:
        for k in range(3):
            sink.write(detections_frame(boxes=BOXES[k : k + 1]))
    assert "crs" not in json.loads((tmp_path / "out.geojson").read_text())
    back = pyogrio.read_dataframe(tmp_path / "out.geojson")
    to_wgs84 = pyproj.Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    for polygon, box in zip(back.geometry, BOXES):
        corners = utm_corners(box)
        same_corners(polygon, np.c_[to_wgs84.transform(corners[:, 0], corners[:, 1])], atol=1e-9)
        assert shapely.is_ccw(polygon.exterior)


def test_geojson_keep_crs_writes_the_raster_crs(tmp_path: Path) -> None:
    path = write_detections(detections_frame(), tmp_path / "out.geojson", keep_crs=True)
    doc = json.loads(path.read_text())
    assert "32631" in doc["crs"]["properties"]["name"]  # GDAL's non-RFC "crs" member
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 32631
    same_corners(back.geometry.iloc[0], utm_corners(BOXES[0]), atol=1e-6)


def test_geojson_without_crs_stays_in_pixels(tmp_path: Path) -> None:
    path = write_detections(detections_frame(crs=None), tmp_path / "out.geojson")
    back = pyogrio.read_dataframe(path)
    # Pixel coordinates; note GDAL assumes WGS84 for any GeoJSON without a "crs" member.
    assert "crs" not in json.loads(path.read_text())
    assert back.geometry.iloc[0].bounds == (10.0, 20.0, 14.0, 30.0)


def test_csv_has_pixel_boxes_and_wkt(tmp_path: Path) -> None:
    path = write_detections(detections_frame(), tmp_path / "out.csv")
    header = path.read_text().splitlines()[0]
    assert header == ",".join([*COLUMNS, "WKT"])
    back = pyogrio.read_dataframe(path)  # GDAL reads the WKT column as geometry
    assert len(back) == 3
    assert back["class_name"].tolist() == ["vehicle", "ship", "vehicle"]
    np.testing.assert_allclose(back[["x_min", "y_min", "x_max", "y_max"]].to_numpy(float), BOXES)
    for polygon, box in zip(back.geometry, BOXES):
        same_corners(polygon, utm_corners(box), atol=1e-6)


def test_coco_results_json(tmp_path: Path) -> None:
    gdf = detections_frame()
    other = detections_frame(boxes=BOXES[:1], scene="b.tif")
    with open_sink(tmp_path / "out.json", crs=gdf.crs) as sink:
        sink.write(gdf)
        sink.write(other)
    results = json.loads((tmp_path / "out.json").read_text())
    assert results[0] == {"image_id": 1, "category_id": 1, "bbox": [10.0, 20.0, 4.0, 10.0], "score": 0.9}
    assert results[1] == {"image_id": 1, "category_id": 2, "bbox": [100.0, 50.0, 3.5, 2.0], "score": 0.7}
    assert [r["image_id"] for r in results] == [1, 1, 1, 2]


@pytest.mark.parametrize("suffix", list(SUPPORTED_FORMATS))
def test_streamed_chunks_and_empty_outputs(tmp_path: Path, suffix: str) -> None:
    sink = DetectionSink(tmp_path / f"many{suffix}", crs="EPSG:32631", flush_rows=2)  # several flushes
    with sink:
        for k in range(5):
            sink.write(detections_frame(boxes=BOXES + 200 * k))
        sink.write(detections_frame(boxes=np.zeros((0, 4))))
    assert sink.count == 15
    with open_sink(tmp_path / f"empty{suffix}", crs="EPSG:32631"):
        pass
    if suffix == ".json":
        assert len(json.loads((tmp_path / "many.json").read_text())) == 15
        assert json.loads((tmp_path / "empty.json").read_text()) == []
    else:
        back = pyogrio.read_dataframe(tmp_path / f"many{suffix}")
        assert len(back) == 15
        expected = np.concatenate([BOXES[:, 0] + 200 * k for k in range(5)])
        np.testing.assert_allclose(np.sort(back["x_min"].to_numpy(float)), np.sort(expected))
        assert len(pyogrio.read_dataframe(tmp_path / f"empty{suffix}")) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_chunks_in_another_crs_are_reprojected(tmp_path: Path) -> None:
    gdf = detections_frame().to_crs("EPSG:32632")
    with open_sink(tmp_path / "out.gpkg", crs="EPSG:32631") as sink:
        sink.write(gdf)
    back = pyogrio.read_dataframe(tmp_path / "out.gpkg")
    assert back.crs.to_epsg() == 32631
    same_corners(back.geometry.iloc[0], utm_corners(BOXES[0]), atol=1e-5)


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson"])
def test_overwrite_refused_and_existing_file_untouched(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    write_detections(detections_frame(), path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileOverwriteError, match="already exists"):
        write_detections(detections_frame(boxes=BOXES[:1]), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    write_detections(detections_frame(boxes=BOXES[:1]), path, overwrite=True)
    assert len(pyogrio.read_dataframe(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)


def test_shapefile_side_file_alone_blocks_the_write(tmp_path: Path) -> None:
    (tmp_path / "out.dbf").write_bytes(b"not mine")
    with pytest.raises(FileOverwriteError, match="out.dbf"):
        write_detections(detections_frame(), tmp_path / "out.shp")
    assert files_in(tmp_path) == ["out.dbf"]


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".json"])
def test_exception_inside_the_sink_leaves_nothing(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with open_sink(tmp_path / f"out{suffix}", crs="EPSG:32631") as sink:
            sink.write(detections_frame())
            sink._flush()  # make sure something is on disk already
            raise RuntimeError("boom")
    assert files_in(tmp_path) == []
    with pytest.raises(OutputError, match="aborted"):
        sink.close()


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"unsupported output format '.kml'.*\.geojson, \.gpkg, \.shp, \.fgb, \.csv, \.json"):
        write_detections(detections_frame(), tmp_path / "out.kml")
    with pytest.raises(OutputError, match="does not exist"):
        open_sink(tmp_path / "missing" / "out.gpkg", crs=None)
    assert files_in(tmp_path) == []


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed")
@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".fgb", ".geojson"])
def test_ogrinfo_reads_every_vector_format(tmp_path: Path, suffix: str) -> None:
    path = write_detections(detections_frame(), tmp_path / f"out{suffix}")
    info = subprocess.run(["ogrinfo", "-so", "-al", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Feature Count: 3" in info
    assert "class_name" in info and "score" in info
    assert ("32631" in info or "UTM zone 31N" in info) if suffix != ".geojson" else "WGS 84" in info
