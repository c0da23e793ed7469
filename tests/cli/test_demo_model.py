"""The packaged demo model: `fsanet detect` uses it without --weights and says so once."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.windows import Window
from typer.testing import CliRunner

from fsanet_geo.geo.detect import detect_job as detect_module
from fsanet_cli.main import app
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.model import load_model

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "data" / "example_scene.tif"
TRUTH = REPO / "examples" / "data" / "example_scene_truth.gpkg"


def test_demo_checkpoint_is_packaged_small_and_loads() -> None:
    path = detect_module.demo_weights_path()
    assert path.is_file(), f"missing packaged demo model {path}"
    assert path.stat().st_size <= 15_000_000
    model = load_model(path)
    assert model.config.preset == "fsanet_r18_tiny"
    assert model.class_names == list(AITOD_CLASSES)


def test_detect_without_weights_uses_the_demo_model(tmp_path: Path) -> None:
    # A 400 x 400 px crop of the example scene, same CRS and pixel grid (rows/cols 1200..1600).
    crop = tmp_path / "crop.tif"
    with rasterio.open(EXAMPLE) as src:
        window = Window(1200, 1200, 400, 400)
        profile = src.profile | {
            "width": 400, "height": 400, "transform": src.window_transform(window),
            "compress": "deflate", "photometric": "RGB", "tiled": False,
        }
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        data = src.read(window=window)
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(data)
    out = tmp_path / "out.gpkg"
    result = CliRunner().invoke(app, ["detect", str(crop), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.count("demo model") == 1
    found = gpd.read_file(out)
    truth = gpd.read_file(TRUTH)
    inside = truth[(truth.x_min >= 1200) & (truth.x_max <= 1600) & (truth.y_min >= 1200) & (truth.y_max <= 1600)]
    assert len(inside) > 0 and len(found) > 0
    assert set(found.class_name) <= set(AITOD_CLASSES)
    # Detections are in the scene's CRS and lie inside the crop.
    assert found.crs.to_epsg() == 32633
    minx, miny, maxx, maxy = found.total_bounds
    with rasterio.open(crop) as src:
        left, bottom, right, top = src.bounds
    assert left - 1e-6 <= minx and maxx <= right + 1e-6 and bottom - 1e-6 <= miny and maxy <= top + 1e-6
    # It finds most of the larger objects it was trained for (storage tanks, pools, planes, ...).
    big = inside[(inside.x_max - inside.x_min) >= 10]
    if len(big):
        centres = np.c_[(big.x_min + big.x_max) / 2, (big.y_min + big.y_max) / 2] - 1200
        boxes = found[["x_min", "y_min", "x_max", "y_max"]].to_numpy()
        hit = [
            bool(((boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])).any())
            for cx, cy in centres
        ]
        assert np.mean(hit) >= 0.5, f"{np.mean(hit):.2f} of {len(big)} objects >= 10 px found"
