"""The demo model on a uint16 copy and on resamples of the example scene (issue 13).

A 320 x 320 px window of the example scene (55 truth objects): the uint16 copy (x40+200,
4 bands, nodata border) scores as the 8-bit original; 0.25 m and 1.0 m resamples read
with ``--gsd auto`` find about as many objects as the native scene.
"""

from __future__ import annotations

import json
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


def test_uint16_copy_scores_as_the_8bit_scene(window: dict[str, Path], tmp_path: Path) -> None:
    _detect(window["8bit"], tmp_path / "a.gpkg")
    output = _detect(window["u16"], tmp_path / "b.gpkg", "--bands", "1,2,3")
    notes = [line for line in output.splitlines() if line.startswith("note: w16.tif is uint16")]
    assert len(notes) == 1 and "--scale " in notes[0], output
    eight = evaluate_vectors(window["truth"], tmp_path / "a.gpkg").overall
    sixteen = evaluate_vectors(window["truth"], tmp_path / "b.gpkg").overall
    assert eight.recall > 0.8
    assert abs(sixteen.precision - eight.precision) <= 0.05, (eight, sixteen)
    assert abs(sixteen.recall - eight.recall) <= 0.05, (eight, sixteen)
    record = json.loads((tmp_path / "b.gpkg.run.json").read_text())
    stretch = record["scenes"][0]["stretch"]
    assert stretch["target_low"] == record["model"]["levels"]["low"]  # the demo model's levels
    # The measured range excludes the nodata border: its low ends are real data values.
    assert min(stretch["source_low"]) >= 200


@pytest.mark.parametrize("gsd", ["0.25", "1.0"])
def test_resampled_scene_at_model_gsd_finds_the_native_count(window: dict[str, Path], tmp_path: Path,
                                                              gsd: str) -> None:
    _detect(window["8bit"], tmp_path / "native.gpkg")
    output = _detect(window[gsd], tmp_path / "auto.gpkg")
    assert output.count(f"GSD {float(gsd):g} m, tiles read at 0.5 m") == 1, output
    native, auto = len(gpd.read_file(tmp_path / "native.gpkg")), len(gpd.read_file(tmp_path / "auto.gpkg"))
    assert abs(auto - native) <= 0.05 * native, (native, auto)
