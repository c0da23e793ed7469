"""Point 16 of issue 17: a corrupt block stops the run with one clean line (no GDAL "See previous
exception" tail); --skip-unreadable skips it and records the window in the summary and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from scene_helpers import PaintedPredictor, write_painted_scene

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.pixels.unreadable import METADATA_KEY

TILE, OVERLAP = 64, 16  # the painted scene is tiled in 64 px blocks


def corrupt_block(path: Path, col: int, row: int) -> None:
    """Overwrite the bytes of block (col, row) of every band with 0xff: deflate cannot decode them."""
    with rasterio.open(path) as ds:
        spans = {(int(ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=b)),
                  int(ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=b))) for b in ds.indexes}
    with open(path, "r+b") as fh:
        for offset, size in spans:
            fh.seek(offset)
            fh.write(b"\xff" * size)


@pytest.fixture
def corrupt_scene(tmp_path: Path):  # noqa: ANN201
    scene = write_painted_scene(tmp_path / "corrupt.tif", height=200, width=260, n_objects=30, seed=4)
    corrupt_block(scene.path, col=2, row=1)  # pixels x 128..192, y 64..128
    return scene


def bad_tiles() -> list[int]:
    """Tiles whose window meets block (2, 1)."""
    return [i for i, w in enumerate(tile_windows(200, 260, TILE, OVERLAP))
            if w.col_off < 192 and 128 < w.col_end and w.row_off < 128 and 64 < w.row_end]


def test_a_corrupt_block_stops_the_run_with_one_clean_line(corrupt_scene, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(RasterError) as err:
        detect_to_file([corrupt_scene.path], PaintedPredictor(), tmp_path / "out.gpkg",
                       settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=1))
    text = str(err.value)
    first = tile_windows(200, 260, TILE, OVERLAP)[bad_tiles()[0]]
    assert text.startswith(f"cannot read tile {bad_tiles()[0]} (window {tuple(first)}) of {corrupt_scene.path}: Read failed (band ")
    assert "IReadBlock failed at X offset 2, Y offset 1" in text
    assert "See previous exception" not in text and "\n" not in text
    assert not (tmp_path / "out.gpkg").exists()


@pytest.mark.parametrize("suffix", [".gpkg", ".fgb"])
def test_skip_unreadable_records_each_window_in_summary_and_metadata(
    corrupt_scene, tmp_path: Path, suffix: str  # noqa: ANN001
) -> None:
    out = tmp_path / f"out{suffix}"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, skip_unreadable=True)
    summary = detect_to_file([corrupt_scene.path], PaintedPredictor(), out, settings=settings)
    windows = tile_windows(200, 260, TILE, OVERLAP)
    assert [w.tile for w in summary.unreadable] == bad_tiles()
    assert [w.window for w in summary.unreadable] == [tuple(windows[i]) for i in bad_tiles()]
    assert all("IReadBlock failed" in w.reason for w in summary.unreadable)
    assert summary.progress.tiles_skipped == len(bad_tiles())
    recorded = json.loads(pyogrio.read_info(out)["layer_metadata"][METADATA_KEY])
    assert [(r["scene"], r["tile"], tuple(r["window"])) for r in recorded] == [
        ("corrupt.tif", i, tuple(windows[i])) for i in bad_tiles()]
    # the objects away from the corrupt block are all found
    gdf = pyogrio.read_dataframe(out)
    clear = [b for b in corrupt_scene.boxes if b[2] <= 112 or b[0] >= 208 or b[3] <= 48 or b[1] >= 144]
    got = {tuple(r) for r in gdf[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)}
    assert {tuple(b) for b in clear} <= got


def test_resumed_runs_keep_the_unreadable_windows(corrupt_scene, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, skip_unreadable=True, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([corrupt_scene.path], PaintedPredictor(interrupt_on_call=9), out, settings=settings)
    settings.resume = True
    summary = detect_to_file([corrupt_scene.path], PaintedPredictor(), out, settings=settings)
    assert summary.resumed_tiles > max(bad_tiles())
    assert [w.tile for w in summary.unreadable] == bad_tiles()
