"""Writing rasters: the project's GeoTIFF writer and PNG quicklooks.

:func:`write_geotiff` writes an 8-bit image (uint8 [H, W] or [H, W, C]) as a GeoTIFF,
atomically: its ``transform`` maps pixel edges to CRS units (GDAL's convention); tiled,
compressed (JPEG in RGB, or lossless deflate), with internal averaged overviews stored
before the full-resolution data (the cloud-optimised layout) and an optional nodata value.
:func:`write_quicklook` writes a small PNG overview of a raster for a first look.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from affine import Affine

from fsanet_geo.errors import ConfigError
from fsanet_geo.io_utils import atomic_path

Compression = Literal["jpeg", "deflate", "none"]
"""GeoTIFF compression: lossy JPEG (RGB colour space), lossless deflate, or none."""


def write_geotiff(
    path: str | os.PathLike[str],
    image: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    compress: Compression = "deflate",
    jpeg_quality: int = 90,
    overview_jpeg_quality: int = 70,
    tiled: bool = True,
    blocksize: int = 512,
    overviews: Sequence[int] = (2, 4, 8),
    tags: Mapping[str, str] | None = None,
    nodata: float | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``image`` (uint8 [H, W] or [H, W, C]) as a GeoTIFF, atomically; return the path.

    ``transform`` maps pixel edges to CRS units, ``crs`` is anything rasterio accepts.
    ``compress``: ``"jpeg"`` (lossy, RGB colour space, ``jpeg_quality`` for the full
    resolution and ``overview_jpeg_quality`` for the overviews), ``"deflate"`` (lossless,
    horizontal predictor 2) or ``"none"``. With ``tiled`` the blocks are ``blocksize``
    square (a multiple of 16). ``overviews`` are increasing decimation factors, built by
    averaging and stored inside the file before the full-resolution data (the
    cloud-optimised GeoTIFF layout); empty for none. ``tags`` go into the dataset metadata.
    ``nodata`` (an integer 0..255, or None for none) marks pixels without data; the
    overviews' averages leave them out. An existing ``path`` is only replaced with
    ``overwrite`` (else :class:`~fsanet_geo.errors.FileOverwriteError`).
    """
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling
    from rasterio.io import MemoryFile

    bands = _bands_first(image)
    count, height, width = bands.shape
    factors = _check_overviews(overviews)
    options = _creation_options(compress, jpeg_quality, tiled, blocksize, count)
    if compress == "jpeg" and not 1 <= overview_jpeg_quality <= 100:
        raise ConfigError(f"overview JPEG quality must be 1..100, got {overview_jpeg_quality}")
    profile: dict[str, Any] = {"driver": "GTiff", "width": width, "height": height, "count": count,
                               "dtype": "uint8", "crs": crs, "transform": transform}
    if nodata is not None:
        if not (float(nodata).is_integer() and 0 <= nodata <= 255):
            raise ConfigError(f"nodata of a uint8 image must be an integer 0..255, got {nodata}")
        profile["nodata"] = nodata
    env = {"JPEG_QUALITY_OVERVIEW": str(overview_jpeg_quality)} if compress == "jpeg" else {}
    with atomic_path(path, overwrite=overwrite) as tmp, rasterio.Env(**env), MemoryFile() as memfile:
        with memfile.open(**profile) as staging:
            staging.write(bands)
            if count == 3:
                from rasterio.enums import ColorInterp

                staging.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
            if tags:
                staging.update_tags(**dict(tags))
            if factors:
                staging.build_overviews(list(factors), Resampling.average)
        with memfile.open() as staged:
            rasterio.shutil.copy(staged, tmp, driver="GTiff", copy_src_overviews=True, **options)
    return Path(path)


def _bands_first(image: np.ndarray) -> np.ndarray:
    """uint8 [C, H, W] from [H, W] or [H, W, C]."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ConfigError(f"the image must be uint8, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or min(array.shape) < 1:
        raise ConfigError(f"the image must be [H, W] or [H, W, C], got shape {array.shape}")
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def _check_overviews(overviews: Sequence[int]) -> tuple[int, ...]:
    factors = tuple(int(f) for f in overviews)
    if any(f < 2 for f in factors) or any(b <= a for a, b in zip(factors, factors[1:])):
        raise ConfigError(f"overview factors must be increasing integers >= 2, got {list(overviews)}")
    return factors


def _creation_options(
    compress: Compression, jpeg_quality: int, tiled: bool, blocksize: int, count: int
) -> dict[str, Any]:
    options: dict[str, Any] = {"interleave": "pixel"}
    if tiled:
        if blocksize < 16 or blocksize % 16:
            raise ConfigError(f"tile size must be a multiple of 16, got {blocksize}")
        options.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if compress == "jpeg":
        if not 1 <= jpeg_quality <= 100:
            raise ConfigError(f"JPEG quality must be 1..100, got {jpeg_quality}")
        if count not in (1, 3):
            raise ConfigError(f"JPEG compression needs 1 or 3 bands, got {count}")
        options.update(compress="JPEG", jpeg_quality=jpeg_quality)
    elif compress == "deflate":
        options.update(compress="DEFLATE", predictor=2, zlevel=9)
    elif compress != "none":
        raise ConfigError(f"compression must be 'jpeg', 'deflate' or 'none', got {compress!r}")
    return options


def write_quicklook(
    raster: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    max_side: int = 750,
    colors: int = 256,
    overwrite: bool = False,
) -> Path:
    """Write a downscaled PNG of an 8-bit RGB ``raster`` (read from its overviews), atomically.

    The longer side becomes ``max_side`` pixels (never upscaled); the colours are reduced to
    a ``colors``-entry palette to keep the file small. Returns the path.
    """
    import rasterio
    from PIL import Image
    from rasterio.enums import Resampling

    if max_side < 1 or not 2 <= colors <= 256:
        raise ConfigError(f"quicklook needs max_side >= 1 and 2..256 colours, got {max_side}, {colors}")
    with rasterio.open(raster) as src:
        scale = min(1.0, max_side / max(src.width, src.height))
        shape = (src.count, max(1, round(src.height * scale)), max(1, round(src.width * scale)))
        data = src.read(out_shape=shape, resampling=Resampling.average)
    picture = Image.fromarray(np.ascontiguousarray(data[:3].transpose(1, 2, 0)) if len(data) >= 3 else data[0])
    if picture.mode == "RGB":
        picture = picture.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path, overwrite=overwrite) as tmp:
        picture.save(tmp, format="PNG", optimize=True)
    return Path(path)
