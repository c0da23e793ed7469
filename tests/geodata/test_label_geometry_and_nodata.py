"""The box of a mapped geometry (hypothesis: it holds every mapped vertex and is the smallest
such box; a pixel rectangle round-trips) and the block-wise nodata test against brute force."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import shapely.affinity
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from label_scenes import dense_oracle_box

from fsanet_geo.geo.pixels.reader import open_scene
from fsanet_geo.geodata import label_boxes, label_nodata
from fsanet_geo.geodata.label_boxes import MAPPED, pixel_boxes
from fsanet_geo.geodata.label_nodata import boxes_with_data

finite = st.floats(-1e3, 1e3, allow_nan=False)
affines = st.builds(
    lambda angle, sx, sy, shear, tx, ty: Affine.translation(tx, ty) @ Affine.rotation(angle) @ Affine.shear(shear, 0)
    @ Affine.scale(sx, -sy),
    st.floats(-180, 180), st.floats(0.1, 30), st.floats(0.1, 30), st.floats(-40, 40),
    st.floats(-1e6, 1e6), st.floats(-1e6, 1e7),
)


@settings(max_examples=60, deadline=None)
@given(affines, finite, finite, st.floats(0.5, 200), st.floats(0.5, 200), st.floats(-90, 90))
def test_box_holds_every_mapped_vertex_and_is_minimal(
    transform: Affine, cx: float, cy: float, w: float, h: float, turn: float
) -> None:
    centre = transform @ (cx, cy)
    shape = shapely.affinity.rotate(shapely.box(centre[0] - w, centre[1] - h, centre[0] + w, centre[1] + h), turn)
    boxes, status = pixel_boxes(np.array([shape]), None, None, transform)
    assert status.tolist() == [MAPPED]
    xy = shapely.get_coordinates(shape)
    m = np.array([[transform.a, transform.b], [transform.d, transform.e]])
    cols, rows = np.linalg.solve(m, (xy - [transform.c, transform.f]).T)
    tol = 1e-6 * (1 + np.abs(boxes).max())
    x1, y1, x2, y2 = boxes[0]
    assert (cols >= x1 - tol).all() and (cols <= x2 + tol).all() and (rows >= y1 - tol).all() and (rows <= y2 + tol).all()
    # minimal: every side is touched by a vertex
    assert abs(cols - x1).min() <= tol and abs(cols - x2).min() <= tol
    assert abs(rows - y1).min() <= tol and abs(rows - y2).min() <= tol


@settings(max_examples=40, deadline=None)
@given(affines, st.floats(-500, 500), st.floats(-500, 500), st.floats(1, 100), st.floats(1, 100))
def test_a_pixel_rectangle_round_trips_through_the_affine(
    transform: Affine, c0: float, r0: float, w: float, h: float
) -> None:
    t = transform
    shape = shapely.affinity.affine_transform(shapely.box(c0, r0, c0 + w, r0 + h), [t.a, t.b, t.d, t.e, t.c, t.f])
    boxes, _ = pixel_boxes(np.array([shape]), None, None, t)
    np.testing.assert_allclose(boxes[0], [c0, r0, c0 + w, r0 + h], rtol=0, atol=1e-6 * (1 + abs(c0) + abs(r0)))


def test_large_features_are_densified_where_reprojection_bends_their_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    north_up = Affine(0.5, 0, 500_000, 0, -0.5, 5_000_000)
    # a lon/lat rectangle across UTM 33N's central meridian (15 E): its southern edge bulges south
    shape = shapely.box(15 - 0.0037, 45, 15 + 0.0063, 45.007)
    expected = dense_oracle_box(shape, "EPSG:4326", "EPSG:32633", north_up)
    boxes, _ = pixel_boxes(np.array([shape]), "EPSG:4326", "EPSG:32633", north_up)
    np.testing.assert_allclose(boxes[0], expected, rtol=0, atol=1e-5)
    monkeypatch.setattr(label_boxes, "DENSIFY_ABOVE_PX", np.inf)
    corners_only, _ = pixel_boxes(np.array([shape]), "EPSG:4326", "EPSG:32633", north_up)
    assert np.abs(corners_only[0] - expected).max() > 1e-2


@pytest.mark.parametrize("kind", ["nodata", "mask"])
@pytest.mark.parametrize("overhead", [0, 10**9])  # one read per box / one read per cell
def test_boxes_with_data_matches_brute_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
                                             overhead: int) -> None:
    rng = np.random.default_rng(3)
    height, width = 90, 130
    in_band = np.zeros((2, height, width), bool)
    for band in in_band:  # scattered patches of data, mostly nodata, different in each band
        for _ in range(15):
            r, c = rng.integers(0, height), rng.integers(0, width)
            band[r : r + rng.integers(1, 6), c : c + rng.integers(1, 6)] = True
    valid = in_band.any(axis=0)  # a pixel holds data when any band does
    data = np.where(in_band, 50, 0).astype(np.uint8)
    path = tmp_path / f"{kind}.tif"
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 2, "dtype": "uint8"}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            path, "w", **profile, **({"nodata": 0} if kind == "nodata" else {})) as ds:
        ds.write(data if kind == "nodata" else data + 1)
        if kind == "mask":
            ds.write_mask(np.where(valid, 255, 0).astype(np.uint8))
    info = open_scene(path)
    assert info.mask_kind == kind
    x1, y1 = rng.uniform(0, width - 1, 400), rng.uniform(0, height - 1, 400)
    boxes = np.column_stack([x1, y1, np.minimum(x1 + rng.uniform(0.2, 12, 400), width),
                             np.minimum(y1 + rng.uniform(0.2, 12, 400), height)])
    monkeypatch.setattr(label_nodata, "CELL", 32)
    monkeypatch.setattr(label_nodata, "READ_OVERHEAD_PX", overhead)
    expected = [valid[int(np.floor(b[1])) : int(np.ceil(b[3])), int(np.floor(b[0])) : int(np.ceil(b[2]))].any()
                for b in boxes]
    found = boxes_with_data(info, boxes)
    assert found.tolist() == expected
    assert 0 < sum(expected) < len(expected)
    band2_only = [valid[int(b[1]):int(np.ceil(b[3])), int(b[0]):int(np.ceil(b[2]))].any() and not
                  in_band[0, int(b[1]):int(np.ceil(b[3])), int(b[0]):int(np.ceil(b[2]))].any() for b in boxes]
    assert any(band2_only)  # the second band decides some boxes
