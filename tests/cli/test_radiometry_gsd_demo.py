"""The demo model on a uint16 copy and on resamples of the example scene (issue 13).

A 320 x 320 px window of the example scene (55 truth objects): the uint16 copy (x40+200,
4 bands, nodata border) scores as the 8-bit original; 0.25 m and 1.0 m resamples read
with ``--gsd auto`` (the default) find about as many objects as the native scene.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window
from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.errors import Notice
from fsanet_geo.evaluate.mapspace import evaluate_vectors

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "data" / "example_scene.tif"
TRUTH = REPO / "examples" / "data" / "example_scene_truth.gpkg"
ROW, COL, SIZE, BORDER = 2240, 1600, 320, 8


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 8-bit window, its uint16 copy, 0.25 m and 1.0 m resamples, and the truth inside."""
    folder = tmp_path_factory.mktemp("window")
    with rasterio.open(EXAMPLE) as src:
        win = Window(COL, ROW, SIZE, SIZE)
        data, transform, crs = src.read(window=win), src.window_transform(win), src.crs
    base = {"driver": "GTiff", "crs": crs, "compress": "deflate"}
    paths = {"8bit": folder / "w8.tif", "u16": folder / "w16.tif", "truth": folder / "truth.gpkg"}
    with rasterio.open(paths["8bit"], "w", height=SIZE, width=SIZE, count=3, dtype="uint8",
                       transform=transform, **base) as dst:
        dst.write(data)
    u16 = np.concatenate([data, data[:1]]).astype(np.uint16) * 40 + 200
    u16[:, :BORDER] = 0
    with rasterio.open(paths["u16"], "w", height=SIZE, width=SIZE, count=4, dtype="uint16", nodata=0,
                       transform=transform, **base) as dst:
        dst.write(u16)
    with rasterio.open(paths["8bit"]) as src:
        for gsd in (0.25, 1.0):
            side = round(SIZE * 0.5 / gsd)
            method = Resampling.bilinear if gsd < 0.5 else Resampling.average
            path = paths[str(gsd)] = folder / f"w{gsd}.tif"
            with rasterio.open(path, "w", height=side, width=side, count=3, dtype="uint8",
                               transform=transform @ Affine.scale(SIZE / side), **base) as dst:
                dst.write(src.read(out_shape=(3, side, side), resampling=method))
    truth = gpd.read_file(TRUTH)
    inside = (truth.x_min >= COL) & (truth.x_max <= COL + SIZE) & (truth.y_min >= ROW + BORDER) & (
        truth.y_max <= ROW + SIZE)
    truth[inside].to_file(paths["truth"])
    return paths


def _detect(scene: Path, out: Path, *options: str) -> str:
    result = CliRunner().invoke(app, ["detect", str(scene), "-o", str(out), "--tile-size", str(SIZE), *options])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def found(window: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo model's detections (one model load): 8-bit, resamples with --gsd auto / native."""
    from fsanet_geo.geo.detect_job import load_detector
    from fsanet_geo.geo.pipeline import detect_to_file
    from fsanet_geo.geo.settings import DetectSettings

    folder = tmp_path_factory.mktemp("found")
    model = load_detector(None, "cpu")
    out = {}
    for name, scene, gsd in [("8bit", "8bit", "auto"), ("0.25", "0.25", "auto"), ("1.0", "1.0", "auto"),
                             ("1.0 native", "1.0", "native")]:
        out[name] = folder / f"{name}.gpkg"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Notice)
            detect_to_file([window[scene]], model, out[name], settings=DetectSettings(tile_size=SIZE, gsd=gsd))
    return out


def test_uint16_copy_scores_as_the_8bit_scene(window: dict[str, Path], found: dict[str, Path],
                                              tmp_path: Path) -> None:
    output = _detect(window["u16"], tmp_path / "b.gpkg", "--bands", "1,2,3")
    notes = [line for line in output.splitlines() if line.startswith("note: w16.tif is uint16")]
    assert len(notes) == 1 and "--scale " in notes[0], output
    eight = evaluate_vectors(window["truth"], found["8bit"]).overall
    sixteen = evaluate_vectors(window["truth"], tmp_path / "b.gpkg").overall
    assert eight.recall > 0.7
    assert abs(sixteen.precision - eight.precision) <= 0.05, (eight, sixteen)
    assert abs(sixteen.recall - eight.recall) <= 0.05, (eight, sixteen)
    record = json.loads((tmp_path / "b.gpkg.run.json").read_text())
    stretch = record["scenes"][0]["stretch"]
    assert stretch["target_low"] == record["model"]["levels"]["low"]  # the demo model's levels
    # The measured range excludes the nodata border: its low ends are real data values.
    assert min(stretch["source_low"]) >= 200


def test_resampled_scenes_read_at_the_model_gsd(window: dict[str, Path], found: dict[str, Path]) -> None:
    count = {name: len(gpd.read_file(path)) for name, path in found.items()}
    # 0.25 m: averaged back to 0.5 m, the scene gives the native count within 5%.
    assert abs(count["0.25"] - count["8bit"]) <= 0.05 * count["8bit"], count
    # 1.0 m has lost the 2-4 px objects: within 10% of the count, and better than at 1.0 m.
    assert abs(count["1.0"] - count["8bit"]) <= 0.10 * count["8bit"], count
    auto = evaluate_vectors(window["truth"], found["1.0"], pixel_size=0.5).overall
    native = evaluate_vectors(window["truth"], found["1.0 native"], pixel_size=0.5).overall
    assert auto.recall > native.recall and auto.f1 > native.f1, (auto, native)
