"""Which label boxes hold at least one valid (not nodata, not masked) scene pixel.

Validity is read as ``fsanet detect`` reads it, by the reader's own rule
(:mod:`fsanet_geo.geo.pixels.reader`): a scene with a mask or alpha band uses GDAL's dataset mask, a
scene with nodata values compares the selected bands' pixels with them (a pixel is valid when
any band holds data). The bands are read once per window and compared here (~10x faster than
GDAL's per-band ``read_masks`` on a pixel-interleaved GeoTIFF); in a band-interleaved file the
first band alone first: a box holding data in it holds data, only the others need all bands. Reading is done per block: the
boxes are grouped by the :data:`CELL` x :data:`CELL` scene cell holding their top-left
corner, and each cell's boxes are answered from ONE read of the window covering them all
(all valid or all nodata answers every box at once; otherwise each box's slice of it is
looked at, a few microseconds for the small boxes of tiny objects), or, where the boxes
are few and far apart, from one small read per box, whichever reads fewer pixels (a read
costs about :data:`READ_OVERHEAD_PX` pixels of fixed overhead). Every box pixel is looked at
at full resolution (no decimated read that could miss a sliver of data), and the pixels read
are at most the occupied cells plus the boxes' overhang.

Letters: N = boxes. Pixel windows are whole pixels: a box covers the pixels it touches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.pixels.reader import SceneInfo, _read_valid  # detect's validity rule, shared on purpose
from fsanet_geo.geo.pixels.remote import display_location, open_raster
from fsanet_geo.geo.pixels.unreadable import gdal_error_text

CELL = 1024
"""Side of the scene cells that group boxes for one read, pixels."""

READ_OVERHEAD_PX = 65_536
"""Fixed cost of one windowed read, counted in pixels, when choosing one read per cell or per box."""


def boxes_with_data(info: SceneInfo, boxes: np.ndarray) -> np.ndarray:
    """bool [N]: True where box ``boxes[i]`` (xyxy pixel edges, inside the raster) touches a valid pixel.

    Raises:
        RasterError: GDAL cannot read the scene's mask.
    """
    n = len(boxes)
    if info.mask_kind == "none" or n == 0:
        return np.ones(n, bool)
    windows = _pixel_windows(boxes, info.width, info.height)
    cells = (windows[:, 1] // CELL) * ((info.width + CELL - 1) // CELL) + windows[:, 0] // CELL
    order = np.argsort(cells, kind="stable")
    starts = np.flatnonzero(np.r_[True, cells[order][1:] != cells[order][:-1]])
    found = np.zeros(n, bool)
    try:
        with open_raster(info.path) as ds:
            for group in np.split(order, starts[1:]):
                found[group] = _group_has_data(ds, info, windows[group])
    except RasterioError as exc:
        raise RasterError(f"cannot read the mask of {display_location(info.path)}: "
                          f"{gdal_error_text(exc, info.path)}") from exc
    return found


def _pixel_windows(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """int64 [N, 4] (col0, row0, col1, row1): the whole pixels each box touches, within the raster."""
    lo = np.floor(boxes[:, :2]).astype(np.int64)
    hi = np.ceil(boxes[:, 2:]).astype(np.int64)
    lo = np.clip(lo, 0, [width - 1, height - 1])
    hi = np.maximum(np.clip(hi, 1, [width, height]), lo + 1)
    return np.concatenate([lo, hi], axis=1)


def _group_has_data(ds: Any, info: SceneInfo, windows: np.ndarray) -> np.ndarray:
    """bool [K] for the K windows of one cell. In a band-interleaved file, first from the first
    band alone (a pixel is valid when ANY band holds data, so a box valid in it is valid), then
    all bands for the rest; pixel-interleaved, all bands at once (a band costs as much as all)."""
    if info.mask_kind == "mask" or len(info.bands) == 1 or _pixel_interleaved(ds):
        return _answer(ds, info, windows)
    found = _answer(ds, dataclasses.replace(info, bands=info.bands[:1], nodata=info.nodata[:1]), windows)
    if not found.all():
        found[~found] = _answer(ds, info, windows[~found])
    return found


def _pixel_interleaved(ds: Any) -> bool:
    from rasterio.enums import Interleaving

    return ds.interleaving == Interleaving.pixel


def _answer(ds: Any, info: SceneInfo, windows: np.ndarray) -> np.ndarray:
    """bool [K]: the cheaper of one read of the windows' union or one read each."""
    c0, r0 = windows[:, 0].min(), windows[:, 1].min()
    c1, r1 = windows[:, 2].max(), windows[:, 3].max()
    union = int((c1 - c0) * (r1 - r0)) + READ_OVERHEAD_PX
    each = int(((windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])).sum()) + READ_OVERHEAD_PX * len(windows)
    if each < union:
        return np.array([_valid(ds, info, w).any() for w in windows], bool)
    valid = _valid(ds, info, (c0, r0, c1, r1))
    if valid.all() or not valid.any():  # the common cases: no table needed
        return np.full(len(windows), bool(valid.flat[0]))
    x0, y0, x1, y1 = (windows[:, 0] - c0, windows[:, 1] - r0, windows[:, 2] - c0, windows[:, 3] - r0)
    return np.array([valid[a:b, c:d].any() for a, b, c, d in zip(y0.tolist(), y1.tolist(), x0.tolist(), x1.tolist())],
                    bool)


def _valid(ds: Any, info: SceneInfo, window: Any) -> np.ndarray:
    """bool [h, w]: valid pixels of the whole-pixel window (col0, row0, col1, row1)."""
    c0, r0, c1, r1 = (int(v) for v in window)
    win = Window(c0, r0, c1 - c0, r1 - r0)
    if info.mask_kind == "mask":  # the dataset mask alone: no need to read the bands
        return ds.dataset_mask(window=win) > 0
    return _read_valid(ds, info, ds.read(list(info.bands), window=win), win)
