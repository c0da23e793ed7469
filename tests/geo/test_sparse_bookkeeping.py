"""Point 4 of issue 24: on a 20,000 px sparse scene the run's work and records follow the data
tiles, not the scene's 784 tiles (the 100,000 px memory figure is benchmarks/bench_detect.py's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from scene_helpers import UTM_TRANSFORM

from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.detect.run import DetectProgress
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.settings import DetectSettings

SIDE, BLOCK, TILE, OVERLAP = 20_000, 512, 800, 64
DATA = (10_000, 10_000, 1024)  # row, col, side of the only data: blocks 19..21 x 19..21


class CountingPredictor:
    """No detections; records how many tiles each call held."""

    class_names = ["vehicle"]

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        self.calls.append(len(images))
        return [{"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
                for _ in images]


def test_a_sparse_scene_costs_its_data_tiles(tmp_path: Path) -> None:
    row, col, side = DATA
    scene = tmp_path / "sparse.tif"
    profile = dict(driver="GTiff", width=SIDE, height=SIDE, count=3, dtype="uint8", crs="EPSG:32633", nodata=0,
                   transform=UTM_TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate",
                   sparse_ok=True, bigtiff="yes")
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(np.full((3, side, side), 120, np.uint8), window=Window(col, row, side, side))
    windows = tile_windows(SIDE, SIDE, TILE, OVERLAP)
    data_tiles = [w for w in windows if w.row_off < row + side and row < w.row_end and w.col_off < col + side
                  and col < w.col_end]
    assert (len(windows), len(data_tiles)) == (784, 4)
    predictor, events = CountingPredictor(), []
    summary = detect_to_file([scene], predictor, tmp_path / "out.gpkg", progress=events.append,
                             settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=4))
    assert predictor.calls == [4]  # the model sees the data tiles only
    assert (summary.progress.tiles_total, summary.progress.tiles_skipped) == (784, 780)
    # one record per closed batch: each batch closes after 4 data tiles or 256 tiles in all
    batches = [e for e in events if isinstance(e, DetectProgress) and not e.finished and e.tiles_done]
    assert len(batches) <= len(predictor.calls) + 784 // 256 + 1
