"""The GeoTIFF writer and quicklooks: exact values, georeferencing, nodata, options, atomic output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from fsanet_geo.errors import ConfigError, FileOverwriteError
from fsanet_geo.geo.outputs.raster_io import write_geotiff, write_quicklook

UTM_TRANSFORM = Affine(0.5, 0.0, 639_000.0, 0.0, -0.5, 5_316_500.0)


@pytest.mark.parametrize("compress", ["deflate", "none"])
@pytest.mark.parametrize("tiled", [True, False])
def test_write_geotiff_reads_back_exactly(tmp_path: Path, compress: str, tiled: bool) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(1, 256, size=(90, 130, 3), dtype=np.uint8)
    image[:5, :7] = 0  # the only nodata pixels
    transform = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_000_000.0)
    path = write_geotiff(tmp_path / "rgb.tif", image, transform, "EPSG:32633", compress=compress, tiled=tiled,
                         blocksize=32, overviews=(2, 4), nodata=0)
    assert path == tmp_path / "rgb.tif"
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), image.transpose(2, 0, 1))
        assert src.transform == transform and src.crs.to_epsg() == 32633
        assert src.nodata == 0 and src.nodatavals == (0.0, 0.0, 0.0)
        assert src.dtypes == ("uint8",) * 3 and (src.height, src.width, src.count) == (90, 130, 3)
        assert src.overviews(1) == [2, 4]
        assert src.block_shapes == ([(32, 32)] * 3 if tiled else [src.block_shapes[0]] * 3)
        assert src.profile.get("tiled", False) is tiled
        assert (src.compression.value if src.compression else "NONE") == compress.upper()
        assert not src.read_masks(1)[:5, :7].any() and src.read_masks(1)[5:, 7:].all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.tif"]  # no temporary leftovers


def test_write_geotiff_without_nodata_has_none(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "a.tif", np.zeros((16, 16), np.uint8), UTM_TRANSFORM, "EPSG:32633",
                         overviews=())
    with rasterio.open(path) as src:
        assert src.nodata is None and src.read_masks(1).all()


@pytest.mark.parametrize("nodata", [-1, 256, 1.5])
def test_write_geotiff_rejects_nodata_outside_uint8(tmp_path: Path, nodata: float) -> None:
    with pytest.raises(ConfigError, match="nodata"):
        write_geotiff(tmp_path / "x.tif", np.zeros((16, 16), np.uint8), Affine.identity(), "EPSG:32633",
                      nodata=nodata)
    assert not any(tmp_path.iterdir())


def test_write_geotiff_deflate_is_lossless_and_honours_options(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    band = rng.integers(0, 256, size=(100, 70), dtype=np.uint8)
    transform = Affine(2.0, 0.0, 10.0, 0.0, -2.0, 500.0)
    path = write_geotiff(tmp_path / "a.tif", band, transform, "EPSG:3857", compress="deflate", tiled=False,
                         overviews=(), tags={"NOTE": "x"})
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), band)
        assert src.count == 1 and src.overviews(1) == [] and src.profile.get("tiled") is False
        assert src.compression.value == "DEFLATE" and src.tags()["NOTE"] == "x"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert src.transform == transform and src.crs.to_epsg() == 3857
    with pytest.raises(FileOverwriteError):
        write_geotiff(path, band, transform, "EPSG:3857")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overviews": (4, 2)}, "overview factors"),
        ({"overviews": (1,)}, "overview factors"),
        ({"blocksize": 100}, "multiple of 16"),
        ({"compress": "lzw"}, "compression must be"),
        ({"compress": "jpeg", "jpeg_quality": 0}, "JPEG quality"),
    ],
)
def test_write_geotiff_rejects_bad_options(tmp_path: Path, kwargs: dict, message: str) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ConfigError, match=message):
        write_geotiff(tmp_path / "x.tif", image, Affine.identity(), "EPSG:32633", **kwargs)
    assert not any(tmp_path.iterdir())


def test_write_geotiff_rejects_non_uint8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="uint8"):
        write_geotiff(tmp_path / "x.tif", np.zeros((8, 8), np.float32), Affine.identity(), "EPSG:32633")


def test_quicklook_downscales_the_longer_side(tmp_path: Path) -> None:
    from PIL import Image

    image = np.full((200, 100, 3), 90, np.uint8)
    tif = write_geotiff(tmp_path / "q.tif", image, UTM_TRANSFORM, "EPSG:32633", overviews=(2,))
    png = write_quicklook(tif, tmp_path / "q.png", max_side=50)
    with Image.open(png) as im:
        assert im.size == (25, 50)
        assert im.convert("RGB").getpixel((10, 10)) == (90, 90, 90)
