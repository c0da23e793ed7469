"""Scene opening, band choice, 8-bit scaling, masks, padding and the prefetch pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from scene_helpers import UTM_TRANSFORM, PaintedScene, write_raster

from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.pixels.reader import TileReader, gdal_env, open_scene, prefetch_tiles, scene_scaling
from fsanet_geo.geo.pixels.scaling import ByteScaling, percentile_scaling, range_scaling
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.windows import TileWindow


def test_open_scene_reads_metadata(utm_scene: PaintedScene) -> None:
    info = open_scene(utm_scene.path)
    assert (info.height, info.width) == (200, 260)
    assert info.bands == (1, 2, 3)
    assert info.dtype == "uint8" and info.is_byte
    assert info.crs is not None and info.crs.to_epsg() == 32633
    assert info.transform == UTM_TRANSFORM
    assert info.mask_kind == "none"


def test_missing_file_and_non_raster_raise_raster_error(tmp_path: Path) -> None:
    with pytest.raises(RasterError, match="does not exist"):
        open_scene(tmp_path / "nope.tif")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster at all")
    with pytest.raises(RasterError, match="not a raster"):
        open_scene(text)
    with pytest.raises(RasterError, match="folder"):
        open_scene(tmp_path)


def test_band_selection_errors(utm_scene: PaintedScene) -> None:
    with pytest.raises(RasterError, match=r"band\(s\) \[4\] out of range"):
        open_scene(utm_scene.path, bands=[1, 2, 4])
    with pytest.raises(RasterError, match="model takes 4"):
        open_scene(utm_scene.path, bands=[1, 2, 3], in_channels=4)
    with pytest.raises(RasterError, match="3 data band"):
        open_scene(utm_scene.path, in_channels=1)
    assert open_scene(utm_scene.path, bands=[1, 1, 1], in_channels=3).bands == (1, 1, 1)


def test_band_order_is_respected(tmp_path: Path) -> None:
    data = np.stack([np.full((32, 32), v, np.uint8) for v in (10, 20, 30)])
    path = write_raster(tmp_path / "bands.tif", data)
    info = open_scene(path, bands=[3, 2, 1])
    tile = TileReader(info, None, 32).read(0, TileWindow(0, 0, 32, 32))
    assert tile.image[:, 0, 0].tolist() == [30, 20, 10]


def test_alpha_band_is_not_a_data_band_and_masks(tmp_path: Path) -> None:
    data = np.full((4, 64, 64), 100, np.uint8)
    data[3] = 255
    data[3, :, :16] = 0  # transparent left strip
    path = tmp_path / "rgba.tif"
    write_raster(path, data)
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    info = open_scene(path, in_channels=3)
    assert info.bands == (1, 2, 3)
    assert info.mask_kind == "mask"
    tile = TileReader(info, None, 64).read(0, TileWindow(0, 0, 64, 64))
    assert tile.valid is not None
    assert not tile.valid[:, :16].any() and tile.valid[:, 16:].all()
    assert (tile.image[:, :, :16] == 0).all() and (tile.image[:, :, 16:] == 100).all()


def test_four_band_scene_picks_rgb_by_colour_interpretation(tmp_path: Path) -> None:
    data = np.stack([np.full((32, 32), v, np.uint8) for v in (1, 2, 3, 4)])
    path = write_raster(tmp_path / "bgrn.tif", data)
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.blue, ColorInterp.green, ColorInterp.red, ColorInterp.undefined]
    assert open_scene(path, in_channels=3).bands == (3, 2, 1)
    assert open_scene(path).bands == (1, 2, 3, 4)


def test_uint8_passes_through_unchanged(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(3, 96, 80), dtype=np.uint8)
    info = open_scene(write_raster(tmp_path / "u8.tif", data))
    assert scene_scaling(info) is None
    reader = TileReader(info, None, 64)
    tile = reader.read(0, TileWindow(32, 16, 64, 64))
    np.testing.assert_array_equal(tile.image, data[:, 32:96, 16:80])
    assert tile.valid is None and not tile.empty


def test_range_scaling_is_exact() -> None:
    scaling = range_scaling((1000, 2020), 1)
    data = np.array([[[0, 1000, 1002, 1510, 2020, 60000]]], np.uint16)
    # (v - 1000) * 255 / 1020 = (v - 1000) / 4
    assert scaling.apply(data).tolist() == [[[0, 0, 0, 128, 255, 255]]]
    with pytest.raises(ConfigError, match="MAX > MIN"):
        range_scaling((5, 5), 1)


def test_percentile_scaling_ignores_invalid_and_nan() -> None:
    band = np.arange(101, dtype=np.float64).reshape(1, 1, 101)
    band[0, 0, 0] = np.nan
    valid = np.ones((1, 101), bool)
    valid[0, 100] = False  # 100 is excluded: valid values are 1..99
    scaling = percentile_scaling(band, valid, (0, 100))
    assert scaling.low.tolist() == [1.0] and scaling.high.tolist() == [99.0]
    flat = percentile_scaling(np.full((2, 4, 4), 7.0), None)
    assert flat.low.tolist() == [7.0, 7.0] and flat.high.tolist() == [8.0, 8.0]
    with pytest.raises(ConfigError):
        ByteScaling(np.array([1.0]), np.array([1.0]))


def uint16_collar_scene(tmp_path: Path) -> Path:
    """uint16, 1 band, 128 x 128: a 32 px nodata (0) collar around values 1000..1255."""
    data = np.zeros((1, 128, 128), np.uint16)
    inner = 1000 + (np.arange(64 * 64) % 256).reshape(64, 64)
    data[0, 32:96, 32:96] = inner
    return write_raster(tmp_path / "u16.tif", data, nodata=0)


def test_uint16_nodata_collar_is_masked_scaled_and_skipped(tmp_path: Path) -> None:
    info = open_scene(uint16_collar_scene(tmp_path))
    assert info.mask_kind == "nodata" and info.nodata == (0.0,)
    scaling = scene_scaling(info, percentiles=(0, 100))
    assert scaling is not None
    assert scaling.low.tolist() == [1000.0] and scaling.high.tolist() == [1255.0]
    reader = TileReader(info, scaling, 32)
    corner = reader.read(0, TileWindow(0, 0, 32, 32))
    assert corner.empty
    middle = reader.read(1, TileWindow(32, 32, 32, 32))
    assert not middle.empty and middle.valid is not None and middle.valid.all()
    # value v maps to v - 1000 exactly (range 255)
    expected = (np.arange(64 * 64) % 256).reshape(64, 64)[:32, :32]
    np.testing.assert_array_equal(middle.image[0], expected)
    edge = reader.read(2, TileWindow(16, 16, 32, 32))
    assert edge.valid is not None and edge.valid.sum() == 16 * 16
    assert (edge.image[0][~edge.valid] == 0).all()


def test_user_range_wins_over_percentiles(tmp_path: Path) -> None:
    info = open_scene(uint16_collar_scene(tmp_path))
    scaling = scene_scaling(info, value_range=(0, 4000))
    assert scaling is not None and scaling.low.tolist() == [0.0] and scaling.high.tolist() == [4000.0]


def test_overviews_give_the_same_percentiles_on_a_smooth_scene(tmp_path: Path) -> None:
    data = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (1, 256, 1))
    plain = open_scene(write_raster(tmp_path / "plain.tif", data))
    with_ovr = open_scene(write_raster(tmp_path / "ovr.tif", data, overviews=True))
    assert with_ovr.has_overviews and not plain.has_overviews
    a = scene_scaling(plain, percentiles=(0, 100), max_side=64)
    b = scene_scaling(with_ovr, percentiles=(0, 100), max_side=64)
    assert a is not None and b is not None
    assert a.low[0] <= 64 and b.low[0] <= 64 and a.high[0] >= 4000 and b.high[0] >= 4000


def test_small_scene_is_not_padded(tmp_path: Path) -> None:
    # A scene smaller than a tile reaches the model as it is (the model pads it with its mean,
    # as it pads an evaluation image), not framed in black, which changes the detections.
    data = np.full((1, 20, 30), 77, np.uint8)
    info = open_scene(write_raster(tmp_path / "small.tif", data))
    (window,) = tile_windows(info.height, info.width, 64, 8)
    tile = TileReader(info, None, 64).read(0, window)
    assert tile.image.shape == (1, 20, 30) and (tile.image == 77).all() and tile.valid is None
    wide = open_scene(write_raster(tmp_path / "wide.tif", np.full((1, 20, 100), 5, np.uint8)))
    windows = tile_windows(wide.height, wide.width, 64, 8)
    tiles = [TileReader(wide, None, 64).read(i, w) for i, w in enumerate(windows)]
    assert [t.image.shape for t in tiles] == [(1, 20, 64), (1, 20, 64)]  # one shape: they batch


def test_non_byte_scene_needs_a_scaling(tmp_path: Path) -> None:
    info = open_scene(uint16_collar_scene(tmp_path))
    with pytest.raises(RasterError, match="needs a scaling"):
        TileReader(info, None, 32)


def test_prefetch_yields_in_order_with_one_handle_per_thread(utm_scene: PaintedScene) -> None:
    info = open_scene(utm_scene.path)
    windows = tile_windows(info.height, info.width, 64, 16)
    with gdal_env(), TileReader(info, None, 64) as reader:
        tiles = list(prefetch_tiles(reader, windows, range(len(windows)), threads=2, depth=3))
        assert 1 <= len(reader._handles) <= 2
    assert [t.index for t in tiles] == list(range(len(windows)))
    with rasterio.open(utm_scene.path) as ds:
        for t in tiles:
            np.testing.assert_array_equal(t.image, ds.read(window=t.window.to_rasterio()))


def test_prefetch_can_start_midway_and_stop_early(utm_scene: PaintedScene) -> None:
    info = open_scene(utm_scene.path)
    windows = tile_windows(info.height, info.width, 64, 16)
    with TileReader(info, None, 64) as reader:
        gen = prefetch_tiles(reader, windows, range(5, len(windows)), threads=2, depth=4)
        assert next(gen).index == 5
        assert next(gen).index == 6
        gen.close()


def test_large_scene_without_overviews_is_sampled_on_a_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsanet_geo.geo.pixels.reader as reader_module

    data = np.zeros((1, 256, 256), np.uint16)
    data[0] = 1000 + (np.arange(256 * 256) % 997).reshape(256, 256)
    data[0, :, :32] = 0  # nodata strip
    info = open_scene(write_raster(tmp_path / "big.tif", data, nodata=0))
    monkeypatch.setattr(reader_module, "GRID_SAMPLE_ABOVE_PIXELS", 100 * 100)
    scaling = scene_scaling(info, percentiles=(0, 100))
    assert scaling is not None
    # 16 x 16 windows of 64 px cover the scene's rows 0..255 and columns 0..255 (with repeats)
    assert scaling.low.tolist() == [1000.0] and scaling.high.tolist() == [1996.0]


def test_prefetch_reads_ahead_in_background_threads_but_never_more_than_depth() -> None:
    import threading
    import time

    class SlowReader:
        def __init__(self) -> None:
            self.started: list[int] = []
            self.threads: set[str] = set()
            self.lock = threading.Lock()

        def read(self, index: int, window: TileWindow) -> int:
            with self.lock:
                self.started.append(index)
                self.threads.add(threading.current_thread().name)
            time.sleep(0.002)
            return index

    reader = SlowReader()
    windows = [TileWindow(0, i, 1, 1) for i in range(30)]
    gen = prefetch_tiles(reader, windows, range(30), threads=2, depth=5)  # type: ignore[arg-type]
    seen = []
    for k, index in enumerate(gen, start=1):
        seen.append(index)
        assert len(reader.started) <= k + 5
        if k == 3:  # a slow consumer: the pool fills the queue meanwhile, and stops there
            deadline = time.monotonic() + 10
            while len(reader.started) < 3 + 5 and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(0.05)
            assert len(reader.started) == 3 + 5
    assert seen == list(range(30))
    assert all(name.startswith("fsanet-read") for name in reader.threads)
