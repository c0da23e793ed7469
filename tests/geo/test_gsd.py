"""Ground sample distance: measured from rasters, matched to a model's by resampled reads."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from scene_helpers import PaintedPredictor, paint, sort_boxes, write_raster

from fsanet_geo.errors import ConfigError, Notice
from fsanet_geo.geo.pixels.gsd import match_gsd, raster_gsd, zoomed_tiling
from fsanet_geo.geo.detect.pipeline import detect_scenes
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.model.files.imagery import DEMO_IMAGERY, ImageryProfile, imagery_from_metadata


def test_gsd_of_projected_and_geographic_rasters() -> None:
    utm = CRS.from_epsg(32633)
    assert raster_gsd(utm, Affine(0.3, 0, 5e5, 0, -0.3, 4.6e6), 100, 100) == pytest.approx(0.3)
    # A rotated 0.5 m grid is still 0.5 m.
    rotated = Affine.rotation(30) @ Affine.scale(0.5, -0.5)
    assert raster_gsd(utm, Affine.translation(5e5, 4.6e6) @ rotated, 10, 10) == pytest.approx(0.5)
    # US survey feet: 1 ft pixels are 0.3048006 m.
    assert raster_gsd(CRS.from_epsg(2263), Affine(1, 0, 1e6, 0, -1, 2e5), 10, 10) == pytest.approx(1200 / 3937)
    # 1e-5 degree pixels centred on the equator: WGS84 degree lengths there are 111319.49 m
    # (longitude) and 110574.39 m (latitude); the GSD is their geometric mean.
    wgs84 = Affine(1e-5, 0, -5e-4, 0, -1e-5, 5e-4)
    expected = math.sqrt(1.1131949 * 1.1057439)
    assert raster_gsd(CRS.from_epsg(4326), wgs84, 100, 100) == pytest.approx(expected, rel=1e-5)
    assert raster_gsd(None, Affine.identity(), 10, 10) is None


def test_match_gsd_rules() -> None:
    assert match_gsd("auto", 0.25, 0.5).zoom == 0.5
    assert match_gsd("auto", 1.0, 0.5).zoom == 2.0
    assert match_gsd("auto", 0.54, 0.5).zoom == 1.0  # within 10%
    assert match_gsd("auto", 0.56, 0.5).zoom == pytest.approx(1.12)
    assert match_gsd("auto", 0.3, None).zoom == 1.0 and "model" in match_gsd("auto", 0.3, None).reason
    assert match_gsd("auto", None, 0.5).zoom == 1.0
    assert match_gsd("native", 0.25, 0.5).zoom == 1.0
    assert match_gsd("0.5", 0.3, None).zoom == pytest.approx(0.6)
    with pytest.raises(ConfigError, match="needs the scene's GSD"):
        match_gsd(0.5, None, 0.5)
    with pytest.raises(ConfigError, match="auto, native or metres"):
        match_gsd("fine", 0.5, 0.5)


def test_zoomed_tiling_fits_the_model_tile() -> None:
    assert zoomed_tiling(800, 64, 1.0) == (800, 64)
    assert zoomed_tiling(800, 64, 0.5) == (1600, 128)
    assert zoomed_tiling(800, 64, 2.0) == (400, 32)
    assert zoomed_tiling(800, 64, 0.6) == (1333, 107)  # round(1333 * 0.6) = 800
    for zoom in np.linspace(0.2, 3.0, 57):
        side, overlap = zoomed_tiling(800, 64, float(zoom))
        assert round(side * zoom) <= 800 and round((side + 1) * zoom) >= 800 and 0 <= overlap < side


def test_imagery_metadata_round_trip_and_demo_default() -> None:
    profile = ImageryProfile(gsd=0.3, low=(10.0, 20.0), high=(200.0, 210.0))
    assert imagery_from_metadata(profile.to_metadata()) == profile
    assert imagery_from_metadata({}) == ImageryProfile()
    assert imagery_from_metadata({"demo": "{}"}).gsd == 0.5 == DEMO_IMAGERY.gsd


class _HalfMetrePredictor(PaintedPredictor):
    imagery = ImageryProfile(gsd=0.5)


def test_quarter_metre_scene_is_read_at_the_model_gsd_with_exact_coordinates(tmp_path: Path) -> None:
    # 0.25 m scene, objects on even pixel edges: a 2x average read keeps their edges exact.
    rng = np.random.default_rng(3)
    boxes, labels = [], []
    for row in range(4):
        for col in range(6):
            x0, y0 = 8 + col * 52 + 2 * int(rng.integers(0, 8)), 8 + row * 56 + 2 * int(rng.integers(0, 8))
            w, h = 2 * rng.integers(3, 9, size=2)
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(int(rng.integers(0, 3)))
    boxes_a, labels_a = np.array(boxes, np.float64), np.array(labels, np.int64)
    path = write_raster(tmp_path / "q.tif", paint(240, 336, boxes_a, labels_a),
                        transform=Affine(0.25, 0, 500000.0, 0, -0.25, 4_650_000.0))
    predictor = _HalfMetrePredictor()
    settings = DetectSettings(tile_size=64, overlap=16, batch_size=8)
    with pytest.warns(Notice, match=r"q.tif: GSD 0.25 m, tiles read at 0.5 m") as caught:
        found = detect_scenes([path], predictor, settings=settings)
    assert sum(issubclass(w.category, Notice) for w in caught) == 1
    # Scene windows of 128 px (64 model px), stride 96: 3 x 4 windows, not 5 x 7.
    assert predictor.tiles_seen == 12
    got, got_labels = sort_boxes(found[["x_min", "y_min", "x_max", "y_max"]].to_numpy(), found.class_id.to_numpy())
    want, want_labels = sort_boxes(boxes_a, labels_a)
    assert got.shape == want.shape and (got_labels == want_labels).all()
    np.testing.assert_allclose(got, want, atol=0.1)
    # Georeferenced through the scene's own 0.25 m transform.
    np.testing.assert_allclose(found.geometry.bounds.minx.min(), 500000.0 + 0.25 * want[:, 0].min())
    # --gsd native reads the scene as it is: 5 x 7 windows of 64 px.
    native = _HalfMetrePredictor()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Notice)
        same = detect_scenes([path], native, settings=DetectSettings(tile_size=64, overlap=16, gsd="native"))
    assert native.tiles_seen == 35 and len(same) == len(want)
