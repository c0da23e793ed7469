"""Fixtures for the geo tests: painted GeoTIFF scenes written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from scene_helpers import PaintedPredictor, PaintedScene, write_painted_scene


@pytest.fixture
def utm_scene(tmp_path: Path) -> PaintedScene:
    """A 3-band uint8 scene in EPSG:32633 with 0.5 m pixels, 200 x 260 px, 40 objects."""
    return write_painted_scene(tmp_path / "utm.tif", height=200, width=260, n_objects=40, seed=1)


@pytest.fixture
def painted_predictor() -> PaintedPredictor:
    return PaintedPredictor()
