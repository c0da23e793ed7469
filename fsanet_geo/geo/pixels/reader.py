"""Windowed reading of a scene into 8-bit tiles, with a background prefetch pool.

Only windows are ever read, so memory does not grow with the scene size. Every reading
thread of a local file opens its own rasterio dataset handle (handles are not thread safe);
a remote scene has one handle shared under a lock, so that each block travels once (see
:mod:`~fsanet_geo.geo.pixels.handles`). GDAL's block cache is global and unbounded by default
(5% of RAM): wrap a run in :func:`gdal_env`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning
from rasterio.errors import RasterioError
from rasterio.windows import Window

from fsanet_geo.errors import RasterError, first_line
from fsanet_geo.geo.pixels.prefetch import prefetch_tiles  # noqa: F401 - re-exported (it lived here)
from fsanet_geo.geo.pixels.gsd import zoomed_read
from fsanet_geo.geo.pixels.handles import SceneHandles
from fsanet_geo.geo.pixels.remote import SceneLocation, as_location, describe_open_error, display_location, is_remote
from fsanet_geo.geo.pixels.remote import open_raster, remote_gdal_options
from fsanet_geo.geo.pixels.retry import RetryBudget
from fsanet_geo.geo.pixels.scaling import ByteScaling, percentile_scaling, range_scaling
from fsanet_geo.geo.pixels.sparse import SparseBlocks
from fsanet_geo.geo.pixels.unreadable import gdal_error_text
from fsanet_geo.geo.windows import TileWindow

GDAL_CACHE_BYTES = 64 * 2**20
"""Default bound on GDAL's block cache during a detection run (bytes)."""

GRID_SAMPLE_ABOVE_PIXELS = 8192 * 8192
"""Scenes larger than this without overviews are sampled on a grid of small windows."""

_SUPPORTED_KINDS = ("u", "i", "f")
_ZERO_U8 = np.zeros((), np.uint8)
_FALSE = np.zeros((), bool)


@dataclass(frozen=True)
class SceneInfo:
    """What the pipeline needs to know about a scene; validated by :func:`open_scene`.

    Attributes:
        path: the raster file (GeoTIFF, COG, VRT, ...): a local ``Path`` or a remote location
            (``str``, see :mod:`~fsanet_geo.geo.pixels.remote`).
        height, width: scene size in pixels (rows, columns).
        bands: 1-based band indexes read, in order (repeats allowed).
        dtype: numpy dtype name of the selected bands.
        crs: the raster's CRS, None when it has none.
        transform: pixel-edge -> CRS affine (identity when not georeferenced).
        mask_kind: "none" (all valid), "nodata" (from nodata values) or "mask" (a mask or alpha band).
        nodata: per selected band nodata value (None where unset).
        has_overviews: whether the first selected band has overviews.
    """

    path: SceneLocation
    height: int
    width: int
    bands: tuple[int, ...]
    dtype: str
    crs: CRS | None
    transform: Affine
    mask_kind: str
    nodata: tuple[float | None, ...]
    has_overviews: bool

    @property
    def is_byte(self) -> bool:
        return np.dtype(self.dtype) == np.uint8


@dataclass
class TileData:
    """One tile read from a scene.

    Attributes:
        index: tile index (position in the scene's window list).
        window: the scene window read; may be smaller than the tile when the scene is.
        image: uint8 [C, T_h, T_w] (T_h = min(T, scene height), T_w likewise: a scene smaller
            than a tile is not padded, the model pads it as it pads every input), zero where
            there is no data.
        valid: bool [T_h, T_w], True where the pixel holds data; None when
            every pixel of the tile holds data.
        empty: True when no pixel of the tile holds data (the tile is skipped).
        unreadable: GDAL's reason when the window could not be read and the reader skips such
            tiles (then ``empty`` too); None otherwise.
        zoom: (x, y) tile pixels per scene pixel; (1, 1) unless read resampled to a model's GSD.
    """

    index: int
    window: TileWindow
    image: np.ndarray
    valid: np.ndarray | None
    empty: bool
    unreadable: str | None = None
    zoom: tuple[float, float] = (1.0, 1.0)


def gdal_env(cache_bytes: int = GDAL_CACHE_BYTES, *, remote: bool = False) -> rasterio.Env:
    """A rasterio environment bounding GDAL's (global) block cache to ``cache_bytes``; with
    ``remote`` also the settings for reading scenes over the network (:func:`remote_gdal_options`)."""
    return rasterio.Env(GDAL_CACHEMAX=int(cache_bytes), **(remote_gdal_options() if remote else {}))


_OPEN_LOCK = threading.Lock()
"""Serialises our ``warnings.catch_warnings`` (process-wide state) across reading threads."""


def _open(path: SceneLocation, budget: RetryBudget | None = None) -> Any:
    """Open ``path`` with rasterio; :class:`RasterError` if it is missing or not a raster.

    A remote location is opened under :func:`remote_gdal_options`, transient faults retried within
    ``budget`` (default: a fresh :class:`RetryBudget`); its errors name the URL.

    rasterio's own NotGeoreferencedWarning ("Dataset has no geotransform ...") is dropped
    for a scene without CRS: the pipeline reports that condition itself (an error, or one
    warning with ``allow_no_crs``). Other warnings are passed on.
    """
    if not is_remote(path) and not path.exists():  # a remote one: GDAL finds out (describe_open_error)
        raise RasterError(f"scene {path} does not exist")
    elif not is_remote(path) and path.is_dir():
        raise RasterError(f"scene {path} is a folder, not a raster file")
    elif not is_remote(path) and not os.access(path, os.R_OK):
        raise RasterError(f"scene {path} cannot be read (permission denied)")

    def attempt() -> tuple[Any, list[warnings.WarningMessage]]:
        with _OPEN_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RioNotGeoreferencedWarning)
            return open_raster(path), caught

    try:
        ds, caught = (budget or RetryBudget(path)).call(attempt) if is_remote(path) else attempt()
    except RasterioError as exc:
        detail = first_line(exc)
        if is_remote(path):
            raise RasterError(describe_open_error(str(path), detail)) from exc
        if "not recognized" in detail:
            detail = "format not recognized"
        raise RasterError(f"{path} is not a raster GDAL can read ({detail})") from exc
    for w in caught:
        if issubclass(w.category, RioNotGeoreferencedWarning) and not ds.crs:
            continue
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return ds


def _default_bands(ds: Any, in_channels: int | None) -> list[int]:
    """Bands to read when the user chose none: the non-alpha bands, RGB order when known."""
    data_bands = [i + 1 for i, ci in enumerate(ds.colorinterp) if ci != ColorInterp.alpha]
    if in_channels is None or len(data_bands) == in_channels:
        return data_bands
    if in_channels == 3:
        by_interp = {ci: i + 1 for i, ci in enumerate(ds.colorinterp)}
        rgb = [by_interp.get(ColorInterp.red), by_interp.get(ColorInterp.green), by_interp.get(ColorInterp.blue)]
        if all(b is not None for b in rgb):
            return [int(b) for b in rgb if b is not None]
    example = data_bands[:in_channels] if len(data_bands) >= in_channels else data_bands[:1] * in_channels
    raise RasterError(
        f"{ds.name} has {len(data_bands)} data band(s) but the model takes {in_channels}: "
        f"choose {in_channels} with --bands (e.g. --bands {','.join(str(b) for b in example)})"
    )


def open_scene(
    path: str | os.PathLike[str], *, bands: Sequence[int] | None = None, in_channels: int | None = None
) -> SceneInfo:
    """Open and validate a scene without reading pixels.

    Args:
        path: raster file.
        bands: 1-based band indexes as in GDAL (``[3, 2, 1]``); default: the non-alpha
            bands (for a 3-channel model with more bands, the red/green/blue ones).
        in_channels: the predictor's channel count, when known.

    Raises:
        RasterError: missing, not a raster, unreadable, band out of range, band count not
            matching ``in_channels``, or an unsupported data type.
    """
    p = as_location(path)
    with _open(p) as ds:
        if ds.count < 1:
            raise RasterError(f"{p} has no bands")
        if bands is None:
            chosen = _default_bands(ds, in_channels)
        else:
            chosen = [int(b) for b in bands]
            bad = [b for b in chosen if not 1 <= b <= ds.count]
            if bad:
                raise RasterError(f"band(s) {bad} out of range: {p} has bands 1..{ds.count}")
            if not chosen:
                raise RasterError("no bands selected")
            if in_channels is not None and len(chosen) != in_channels:
                raise RasterError(
                    f"{len(chosen)} band(s) selected but the model takes {in_channels} channel(s)"
                )
        dtypes = {ds.dtypes[b - 1] for b in chosen}
        if len(dtypes) != 1:
            raise RasterError(f"selected bands of {p} have different data types {sorted(dtypes)}")
        dtype = dtypes.pop()
        if np.dtype(dtype).kind not in _SUPPORTED_KINDS:
            raise RasterError(f"{p} has unsupported data type {dtype}")
        flags = [ds.mask_flag_enums[b - 1] for b in chosen]
        if all(f == [MaskFlags.all_valid] for f in flags):
            mask_kind = "none"
        elif all(MaskFlags.nodata in f for f in flags):
            mask_kind = "nodata"
        else:
            mask_kind = "mask"
        return SceneInfo(
            path=p,
            height=int(ds.height),
            width=int(ds.width),
            bands=tuple(chosen),
            dtype=str(dtype),
            crs=ds.crs if ds.crs else None,
            transform=ds.transform,
            mask_kind=mask_kind,
            nodata=tuple(ds.nodatavals[b - 1] for b in chosen),
            has_overviews=bool(ds.overviews(chosen[0])),
        )


def _valid_from_nodata(data: np.ndarray, nodata: Sequence[float | None]) -> np.ndarray:
    """bool [H, W]: True where any band differs from its nodata value (NaN aware)."""
    valid = np.zeros(data.shape[1:], bool)
    for band, nd in zip(data, nodata):
        if nd is None:
            return np.ones(data.shape[1:], bool)
        valid |= ~np.isnan(band) if isinstance(nd, float) and math.isnan(nd) else band != nd
    return valid


def _read_sample(ds: Any, info: SceneInfo, max_side: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A decimated view of the scene, [C, h, w] values and bool [h, w] validity."""
    # A sparse GeoTIFF is sampled inside the blocks it stores (a grid or a decimated read
    # would mostly meet absent blocks and could miss the data altogether).
    windows = SparseBlocks(ds, info.bands, info.mask_kind).sample_windows()
    if windows is None and info.height * info.width > GRID_SAMPLE_ABOVE_PIXELS and not info.has_overviews:
        # No overviews: a grid of small windows reads a fraction of the blocks instead of all.
        n, size = 16, 64
        windows = [Window(int(c), int(r), min(size, info.width), min(size, info.height))
                   for r in np.linspace(0, max(info.height - size, 0), n).astype(int)
                   for c in np.linspace(0, max(info.width - size, 0), n).astype(int)]
    if windows is not None:
        parts, masks = [], []
        for win in windows:  # at most 64 x 64 samples each (a sparse scene's are whole blocks)
            shape = (len(info.bands), min(64, int(win.height)), min(64, int(win.width)))
            data = ds.read(list(info.bands), window=win, out_shape=shape, resampling=Resampling.nearest)
            parts.append(data.reshape(len(info.bands), -1))
            masks.append(_read_valid(ds, info, data, win).reshape(-1))
        return np.concatenate(parts, axis=1)[:, None, :], np.concatenate(masks)[None, :]
    factor = max(1.0, max(info.height, info.width) / max_side)
    out_h, out_w = max(1, round(info.height / factor)), max(1, round(info.width / factor))
    data = ds.read(list(info.bands), out_shape=(len(info.bands), out_h, out_w), resampling=Resampling.nearest)
    if info.mask_kind == "mask":
        valid = ds.dataset_mask(out_shape=(out_h, out_w)) > 0
    elif info.mask_kind == "nodata":
        valid = _valid_from_nodata(data, info.nodata)
    else:
        valid = None
    return data, valid


def _read_valid(ds: Any, info: SceneInfo, data: np.ndarray, window: Window) -> np.ndarray:
    if info.mask_kind == "mask":
        return ds.dataset_mask(window=window) > 0
    if info.mask_kind == "nodata":
        return _valid_from_nodata(data, info.nodata)
    return np.ones(data.shape[1:], bool)


def scene_scaling(
    info: SceneInfo,
    *,
    value_range: Sequence[float] | None = None,
    percentiles: Sequence[float] = (2.0, 98.0),
    max_side: int = 1024,
) -> ByteScaling | None:
    """The 8-bit scaling of a scene, computed once: None for uint8 without a user range.

    A user ``value_range`` (min, max) wins; otherwise per-band ``percentiles`` of the valid
    pixels of a decimated read (at most ``max_side`` pixels a side; GDAL uses overviews
    when present; a huge scene without overviews is sampled on a grid of small windows).
    """
    if value_range is not None:
        return range_scaling(value_range, len(info.bands))
    if info.is_byte:
        return None
    with _open(info.path) as ds:
        try:
            data, valid = _read_sample(ds, info, max_side)
        except RasterioError as exc:
            raise RasterError(f"cannot read {info.path}: {gdal_error_text(exc, info.path)}") from exc
    return percentile_scaling(data, valid, percentiles)


class TileReader:
    """Reads tiles of one scene; safe to call from several threads (see :class:`SceneHandles`).

    Args:
        info: the scene (from :func:`open_scene`).
        scaling: the 8-bit scaling (None: the bands are uint8 and pass through).
        tile_size: tile side in model pixels; tiles are ``min(tile_size, scene side * zoom)`` per
            axis (a small scene reaches the model unpadded, as in eval), windows zero-padded to it.
        skip_unreadable: a window GDAL cannot read becomes an empty tile carrying the reason
            (``TileData.unreadable``) instead of a :class:`RasterError`.
        retry_seconds: bound on the retries of a remote scene's faults, seconds (None:
            ``FSANET_RETRY_SECONDS`` or 60; see :mod:`~fsanet_geo.geo.pixels.retry`).
    """

    def __init__(
        self, info: SceneInfo, scaling: ByteScaling | None, tile_size: int, zoom: float = 1.0, *,
        skip_unreadable: bool = False, retry_seconds: float | None = None,
    ) -> None:
        if scaling is None and not info.is_byte:
            raise RasterError(f"{info.path} is {info.dtype}: it needs a scaling to 8 bits")
        self.info = info
        self.scaling = scaling
        self.tile_size = tile_size
        self.skip_unreadable = skip_unreadable
        self.zoom = zoom
        self.tile_shape = (min(tile_size, max(1, round(info.height * zoom))),
                           min(tile_size, max(1, round(info.width * zoom))))
        self._budget = RetryBudget(info.path, retry_seconds) if is_remote(info.path) else None
        self._handles = SceneHandles(lambda: _open(info.path, self._budget), info.bands, info.mask_kind,
                                     shared=self._budget is not None)
        self._lock = threading.Lock()
        self.windows_read = 0
        """Windows read from the file so far (tiles found empty from the block index are not)."""

    def _empty(self, index: int, window: TileWindow) -> TileData:
        """An empty tile: zero-stride views of one zero, so that skipped tiles cost no memory."""
        (th, tw), c = self.tile_shape, len(self.info.bands)
        return TileData(index, window, np.broadcast_to(_ZERO_U8, (c, th, tw)), np.broadcast_to(_FALSE, (th, tw)), True)

    def _pixels(self, window: TileWindow) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(values [C, h, w], validity [h, w] or None) of ``window``; None when its blocks are absent."""
        info, rio_window = self.info, window.to_rasterio()
        with self._handles.use() as (ds, sparse):
            if sparse.is_absent(window):
                return None
            with self._lock:
                self.windows_read += 1
            if self.zoom != 1.0:
                return zoomed_read(ds, info.bands, rio_window, self.zoom, info.mask_kind != "none")  # type: ignore[no-any-return]
            data = ds.read(list(info.bands), window=rio_window)
            return data, None if info.mask_kind == "none" else _read_valid(ds, info, data, rio_window)

    def read(self, index: int, window: TileWindow) -> TileData:
        """Read, scale and pad the tile ``index`` covering ``window`` (to :attr:`tile_shape`)."""
        info, (th, tw) = self.info, self.tile_shape
        try:
            pixels = self._budget.call(lambda: self._pixels(window)) if self._budget else self._pixels(window)
        except RasterioError as exc:
            reason = gdal_error_text(exc, info.path)
            if self.skip_unreadable:
                return dataclasses.replace(self._empty(index, window), unreadable=reason)
            raise RasterError(f"cannot read tile {index} (window {tuple(window)}) of "
                              f"{display_location(info.path)}: {reason}") from exc
        if pixels is None:
            return self._empty(index, window)
        data, valid = pixels
        if valid is not None and not valid.any():
            return self._empty(index, window)
        image8 = data if self.scaling is None else self.scaling.apply(data)
        if valid is not None:
            image8 = np.where(valid[None], image8, 0).astype(np.uint8)
        h, w = image8.shape[1:]
        zoom = (w / window.width, h / window.height)
        if (h, w) == (th, tw):
            return TileData(index, window, np.ascontiguousarray(image8), valid, False, zoom=zoom)
        image = np.zeros((len(info.bands), th, tw), np.uint8)
        image[:, :h, :w] = image8
        full_valid = np.zeros((th, tw), bool)
        full_valid[:h, :w] = True if valid is None else valid
        return TileData(index, window, image, full_valid, False, zoom=zoom)

    def close(self) -> None:
        """Close every handle opened by the reading threads."""
        self._handles.close()

    def __enter__(self) -> TileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
