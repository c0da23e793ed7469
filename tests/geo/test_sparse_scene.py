"""Point 12 of issue 17: a sparse GeoTIFF's empty tiles are skipped from its block index, without
being read, and skipped tiles keep no pixel arrays while a batch fills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from scene_helpers import UTM_TRANSFORM, PaintedPredictor, paint, random_objects

from fsanet_geo.geo.detect.pipeline import detect_scenes
from fsanet_geo.geo.detect.predict import batches
from fsanet_geo.geo.pixels.reader import TileReader, open_scene, prefetch_tiles
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.tiling import tile_windows

SIDE, BLOCK, TILE, OVERLAP = 1024, 64, 128, 16
PATCH = (448, 320, 192, 128)  # row, col, height, width: the only data, blocks 7..9 x 5..6


def write_sparse_scene(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SIDE x SIDE uint8 3-band GeoTIFF, nodata 0, written sparse: only the PATCH blocks exist."""
    row, col, h, w = PATCH
    boxes, labels = random_objects(h, w, 10, seed=3, margin=2)
    profile = dict(driver="GTiff", width=SIDE, height=SIDE, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=UTM_TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate",
                   nodata=0, sparse_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(paint(h, w, boxes, labels), window=Window(col, row, w, h))
    return boxes + [col, row, col, row], labels


def present_block_windows(path: Path) -> set[int]:
    """Tiles whose window meets a block that is in the file (independently of the reader)."""
    row, col, h, w = PATCH
    rows, cols = range(row // BLOCK, (row + h - 1) // BLOCK + 1), range(col // BLOCK, (col + w - 1) // BLOCK + 1)
    with rasterio.open(path) as ds:  # the writer stored exactly the patch's blocks
        assert ds.get_tag_item(f"BLOCK_SIZE_{cols[0]}_{rows[0]}", "TIFF", bidx=1) not in (None, "0")
        assert ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1) in (None, "0")
    y0, y1, x0, x1 = rows[0] * BLOCK, (rows[-1] + 1) * BLOCK, cols[0] * BLOCK, (cols[-1] + 1) * BLOCK
    return {i for i, win in enumerate(tile_windows(SIDE, SIDE, TILE, OVERLAP))
            if win.row_off < y1 and y0 < win.row_end and win.col_off < x1 and x0 < win.col_end}


def test_empty_tiles_are_skipped_without_a_read_and_hold_no_pixels(tmp_path: Path) -> None:
    path = tmp_path / "sparse.tif"
    write_sparse_scene(path)
    windows = tile_windows(SIDE, SIDE, TILE, OVERLAP)
    expected_reads = present_block_windows(path)
    assert len(windows) == 81 and len(expected_reads) == 6
    with TileReader(open_scene(path), None, TILE) as reader:
        groups = list(batches(prefetch_tiles(reader, windows, range(len(windows)), threads=2, depth=4), 4,
                              max_tiles=16))
        assert reader.windows_read == len(expected_reads)
    tiles = [t for g in groups for t in g]
    assert [t.index for t in tiles] == list(range(len(windows)))
    assert max(len(g) for g in groups) <= 16  # a batch of empty tiles closes, it does not grow
    empty = [t for t in tiles if t.empty]
    assert {t.index for t in tiles if not t.empty} <= expected_reads
    for t in empty:  # zero-stride views of one zero: no memory per skipped tile
        assert t.image.shape == (3, TILE, TILE) and t.image.strides == (0, 0, 0) and not t.image.any()
        assert t.valid is not None and t.valid.strides == (0, 0) and not t.valid.any()


def test_a_sparse_scene_finds_its_objects_once_and_counts_the_skipped_tiles(tmp_path: Path) -> None:
    path = tmp_path / "sparse.tif"
    boxes, labels = write_sparse_scene(path)
    predictor = PaintedPredictor()
    progress = []
    gdf = detect_scenes([path], predictor, settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2),
                        progress=progress.append)
    got = gdf[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
    np.testing.assert_array_equal(got[np.lexsort((got[:, 0], got[:, 1]))],
                                  boxes[np.lexsort((boxes[:, 0], boxes[:, 1]))])
    last = progress[-1]
    assert last.tiles_done == 81 and predictor.tiles_seen == 81 - last.tiles_skipped
    assert predictor.tiles_seen <= len(present_block_windows(path))


def test_the_scaling_of_a_sparse_uint16_scene_is_sampled_from_its_stored_blocks(tmp_path: Path) -> None:
    """10,000 px without overviews: the grid of sample windows would meet only absent blocks (and
    give the range 0..255); the percentiles come from the blocks the file stores (here every one
    of them, whole: the exact percentiles)."""
    from fsanet_geo.geo.pixels.reader import scene_scaling

    row, col, h, w = PATCH
    values = np.random.default_rng(0).integers(1000, 3000, (3, h, w)).astype(np.uint16)
    path = tmp_path / "sparse16.tif"
    side = 10_000  # > GRID_SAMPLE_ABOVE_PIXELS; sparse, so 0.1 MB on disk
    profile = dict(driver="GTiff", width=side, height=side, count=3, dtype="uint16", crs="EPSG:32633",
                   transform=UTM_TRANSFORM, tiled=True, blockxsize=BLOCK, blockysize=BLOCK, compress="deflate",
                   nodata=0, sparse_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, window=Window(col, row, w, h))
    scaling = scene_scaling(open_scene(path))
    assert scaling is not None
    low, high = np.percentile(values.reshape(3, -1).astype(np.float64), [2.0, 98.0], axis=1)
    np.testing.assert_allclose(scaling.low, low)
    np.testing.assert_allclose(scaling.high, high)
