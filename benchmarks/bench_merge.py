"""Cross-tile merge time for 10k, 100k and 1M detections on a realistic tile grid.

Objects (6-32 px, 3 classes) are scattered uniformly over a square scene tiled with
800 px tiles and 128 px overlap (edge tiles shifted inward); every tile reports every
object it sees, clipped to the tile, with jittered boxes and scores, so objects on seams
come as twins and cut copies. Only ``SeamMerger.add``/``finish`` are timed, tiles in
raster order (as the pipeline feeds them) and in random order.

Reproduce::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_merge.py            # 10k 100k 1M
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_merge.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.seams.merge import SeamMerger
from fsanet_geo.geo.windows import TileWindow

TILE = 800
OVERLAP = 128
PIXELS_PER_OBJECT = 2000  # about 320 objects per 800 x 800 tile
MAX_SIZE = 32


def grid_windows(height: int, width: int, tile: int, overlap: int) -> list[TileWindow]:
    """Regular grid of full-size tiles, the last row/column shifted inward."""

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        return sorted(set(range(0, n - tile, tile - overlap)) | {n - tile})

    return [
        TileWindow(r, c, min(tile, height), min(tile, width))
        for r in starts(height)
        for c in starts(width)
    ]


def make_tiles(n_target: int, seed: int = 0) -> tuple[list[TileWindow], int, int, list[Detections]]:
    """Windows, scene side, object count and per-tile detections (scene pixels), ~n_target in all."""
    rng = np.random.default_rng(seed)
    repeat = (TILE / (TILE - OVERLAP)) ** 2  # mean number of tiles seeing an object
    n_obj = int(n_target / repeat)
    side = max(TILE, int(math.sqrt(n_obj * PIXELS_PER_OBJECT)))
    xy = rng.uniform(0, side - MAX_SIZE, (n_obj, 2))
    wh = rng.uniform(6, MAX_SIZE, (n_obj, 2))
    objects = np.c_[xy, xy + wh]
    labels = rng.integers(0, 3, n_obj)
    windows = grid_windows(side, side, TILE, OVERLAP)
    # Bin objects by the cell (of TILE px) holding their top-left corner.
    cell = np.floor(objects[:, :2] / TILE).astype(np.int64)
    n_cells = side // TILE + 1
    key = cell[:, 1] * n_cells + cell[:, 0]
    order = np.argsort(key, kind="stable")
    objects, labels, key = objects[order], labels[order], key[order]
    bounds = np.searchsorted(key, np.arange(n_cells * n_cells + 1))
    tiles = []
    for t, w in enumerate(windows):
        rows = range(max(0, (w.row_off - MAX_SIZE) // TILE), min(n_cells, w.row_end // TILE + 1))
        cols = range(max(0, (w.col_off - MAX_SIZE) // TILE), min(n_cells, w.col_end // TILE + 1))
        # keys of one row of cells are contiguous: one slice per row
        idx = np.concatenate(
            [np.arange(bounds[r * n_cells + cols.start], bounds[r * n_cells + cols.stop]) for r in rows]
        )
        b = objects[idx]
        seen = (b[:, 2] > w.col_off) & (b[:, 0] < w.col_end) & (b[:, 3] > w.row_off) & (b[:, 1] < w.row_end)
        b = b[seen] + rng.normal(0, 0.3, (int(seen.sum()), 4))
        b[:, [0, 2]] = b[:, [0, 2]].clip(w.col_off, w.col_end)
        b[:, [1, 3]] = b[:, [1, 3]].clip(w.row_off, w.row_end)
        scores = rng.uniform(0.3, 1.0, len(b))
        tiles.append(Detections(b, scores, labels[idx][seen], np.full(len(b), t)))
    return windows, side, n_obj, tiles


def time_merge(
    windows: list[TileWindow], side: int, tiles: list[Detections], order: np.ndarray
) -> tuple[float, float, int, int]:
    """Wall seconds and CPU seconds for the whole merge, detections out, peak number held."""
    merger = SeamMerger(windows, side, side)
    out = 0
    peak = 0
    start, cpu = time.perf_counter(), time.process_time()
    for t in order.tolist():
        out += len(merger.add(t, tiles[t]))
        peak = max(peak, merger.pending)
    out += len(merger.finish())
    return time.perf_counter() - start, time.process_time() - cpu, out, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    print(f"# {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"# tile {TILE} px, overlap {OVERLAP} px, class-aware hard NMS, ios 0.5, best of {args.repeat}")
    head = ["N", "tiles", "order", "seconds", "CPU s", "detections/s", "objects", "kept", "peak held"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in head) + "|")
    for size in args.sizes:
        windows, side, n_obj, tiles = make_tiles(size)
        n = sum(len(d) for d in tiles)
        rng = np.random.default_rng(1)
        for name, order in [("raster", np.arange(len(windows))), ("random", rng.permutation(len(windows)))]:
            runs = [time_merge(windows, side, tiles, order) for _ in range(args.repeat)]
            seconds, cpu, kept, peak = min(runs)
            row = [n, len(windows), name, f"{seconds:.2f}", f"{cpu:.2f}", f"{n / seconds:,.0f}", n_obj, kept, peak]
            print("| " + " | ".join(str(x) for x in row) + " |")
    print("# reproduce: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_merge.py")


if __name__ == "__main__":
    main()
