"""Pixel boxes to CRS polygons: pixel-edge exact through north-up, rotated and sheared affines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.georef import (
    COLUMNS,
    labelled_boxes_frame,
    pixel_boxes_to_polygons,
    polygons_to_pixel_boxes,
    to_geodataframe,
)

UTM = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_000_000.0)  # 50 cm pixels, north up


def assert_corners(polygon: shapely.Polygon, expected: list[tuple[float, float]]) -> None:
    """The polygon's ring has exactly these 4 corners, to 1e-6 CRS units."""
    coords = shapely.get_coordinates(polygon.exterior)
    assert len(coords) == 5 and np.array_equal(coords[0], coords[-1])
    got = sorted(map(tuple, coords[:-1].tolist()))
    np.testing.assert_allclose(got, sorted(expected), rtol=0, atol=1e-6)


def test_north_up_utm_corners_are_pixel_edges() -> None:
    (poly,) = pixel_boxes_to_polygons(np.array([[10.0, 20.0, 14.0, 30.0]]), UTM)
    # x = 500000 + 0.5 * col, y = 4000000 - 0.5 * row
    assert_corners(poly, [(500_005.0, 3_999_990.0), (500_007.0, 3_999_990.0), (500_007.0, 3_999_985.0), (500_005.0, 3_999_985.0)])
    assert poly.area == pytest.approx(4 * 10 * 0.25, abs=1e-9)
    (pixel0,) = pixel_boxes_to_polygons(np.array([[0.0, 0.0, 1.0, 1.0]]), UTM)
    assert pixel0.bounds == (500_000.0, 3_999_999.5, 500_000.5, 4_000_000.0)  # no half-pixel shift


def test_rotated_geotransform_moves_all_four_corners() -> None:
    theta = 30.0
    transform = Affine.translation(600_000.0, 5_000_000.0) @ Affine.rotation(theta) @ Affine.scale(0.5, -0.5)
    box = [4.0, 2.0, 10.0, 8.0]
    (poly,) = pixel_boxes_to_polygons(np.array([box]), transform)
    cos, sin = math.cos(math.radians(theta)), math.sin(math.radians(theta))

    def expected(col: float, row: float) -> tuple[float, float]:
        u, v = 0.5 * col, -0.5 * row
        return 600_000.0 + u * cos - v * sin, 5_000_000.0 + u * sin + v * cos

    assert_corners(poly, [expected(c, r) for c in (box[0], box[2]) for r in (box[1], box[3])])
    assert poly.area == pytest.approx(6 * 6 * 0.25, abs=1e-6)
    assert poly.envelope.area > poly.area * 1.3  # really rotated, not just the envelope


def test_sheared_geotransform_gives_the_exact_parallelogram() -> None:
    transform = Affine(0.5, 0.1, 300_000.0, 0.05, -0.5, 6_000_000.0)
    (poly,) = pixel_boxes_to_polygons(np.array([[1.0, 2.0, 3.0, 7.0]]), transform)
    corners = [(0.5 * c + 0.1 * r + 300_000.0, 0.05 * c - 0.5 * r + 6_000_000.0) for c in (1.0, 3.0) for r in (2.0, 7.0)]
    assert_corners(poly, corners)
    assert poly.area == pytest.approx(abs(transform.determinant) * 2 * 5, abs=1e-6)


@pytest.mark.parametrize(
    "transform",
    [UTM, Affine.rotation(75) @ Affine.scale(2, -2), Affine(0.5, 0.1, 0, 0.05, -0.5, 0), Affine.identity()],
)
def test_rings_are_closed_and_counter_clockwise(transform: Affine) -> None:
    polys = pixel_boxes_to_polygons(np.array([[0.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 9.0]]), transform)
    assert all(shapely.is_ccw(p.exterior) for p in polys)
    assert all(len(p.exterior.coords) == 5 for p in polys)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(0, 5000)] * 2, *[st.floats(0.5, 200)] * 2), min_size=1, max_size=20),
    st.floats(-180, 180),
    st.floats(0.1, 30),
)
def test_round_trip_to_pixel_boxes(boxes: list[tuple[float, ...]], angle: float, size: float) -> None:
    b = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes])
    transform = Affine.translation(400_000, 4_500_000) @ Affine.rotation(angle) @ Affine.scale(size, -size)
    back = polygons_to_pixel_boxes(pixel_boxes_to_polygons(b, transform), transform)
    np.testing.assert_allclose(back, b, atol=1e-6)


def test_to_geodataframe_columns_and_values() -> None:
    dets = Detections([[10, 20, 14, 30], [0, 0, 1, 1]], [0.7, 0.25], [1, 0])
    gdf = to_geodataframe(dets, class_names=["vehicle", "ship"], transform=UTM, crs="EPSG:32631", scene="a.tif")
    assert list(gdf.columns) == [*COLUMNS, "geometry"]
    assert gdf.crs.to_epsg() == 32631
    assert gdf["class_id"].tolist() == [1, 0]
    assert gdf["class_name"].tolist() == ["ship", "vehicle"]
    assert gdf["score"].tolist() == [0.7, 0.25]  # float32 tail removed
    assert gdf[["x_min", "y_min", "x_max", "y_max"]].values.tolist() == [[10, 20, 14, 30], [0, 0, 1, 1]]
    assert gdf["scene"].tolist() == ["a.tif", "a.tif"]
    assert gdf.geometry.iloc[0].bounds == (500_005.0, 3_999_985.0, 500_007.0, 3_999_990.0)


def test_to_geodataframe_without_crs_stays_in_pixels() -> None:
    gdf = to_geodataframe(Detections([[1, 2, 3, 5]], [0.5], [0]), class_names=["a"], transform=UTM, crs=None, scene=None)
    assert gdf.crs is None
    assert gdf.geometry.iloc[0].bounds == (1.0, 2.0, 3.0, 5.0)
    empty = to_geodataframe(Detections(), class_names=["a"], transform=UTM, crs="EPSG:32631", scene="x")
    assert len(empty) == 0 and list(empty.columns) == [*COLUMNS, "geometry"]


def test_label_without_class_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="label 2 has no class name"):
        to_geodataframe(Detections([[0, 0, 1, 1]], [0.5], [2]), class_names=["a", "b"], transform=UTM, crs=None, scene=None)


def test_labelled_boxes_frame_columns_without_scores_and_with_extras() -> None:
    boxes = np.array([[10, 20, 14, 30], [0, 0, 1, 1]], np.float64)
    gdf = labelled_boxes_frame(boxes, np.array([1, 0]), class_names=["vehicle", "ship"], transform=UTM,
                               crs="EPSG:32631", extra={"note": np.array(["a", "b"], dtype=object)})
    assert list(gdf.columns) == ["class_id", "class_name", "x_min", "y_min", "x_max", "y_max", "note", "geometry"]
    assert gdf["class_id"].dtype == np.int64 and gdf["class_name"].tolist() == ["ship", "vehicle"]
    assert gdf.crs.to_epsg() == 32631 and gdf["note"].tolist() == ["a", "b"]
    expected = pixel_boxes_to_polygons(boxes, UTM)
    assert [g.equals_exact(p, 0) for g, p in zip(gdf.geometry, expected)] == [True, True]
    empty = labelled_boxes_frame(np.zeros((0, 4)), np.zeros(0, np.int64), class_names=[], transform=UTM, crs=None)
    assert len(empty) == 0 and empty.crs is None and "score" not in empty.columns
