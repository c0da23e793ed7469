"""Which label boxes hold at least one valid (not nodata, not masked) scene pixel.

Validity is read as ``fsanet detect`` reads it (:mod:`fsanet_geo.geo.reader`): a scene with
a mask or alpha band uses GDAL's dataset mask, a scene with nodata values the selected
bands' masks (a pixel is valid when any band holds data). Reading is done per block: the
boxes are grouped by the :data:`CELL` x :data:`CELL` scene cell holding their top-left
corner, and each cell's boxes are answered from ONE read of the window covering them all
(then a summed-area table gives each box's valid-pixel count in O(1)), or, where the boxes
are few and far apart, from one small read per box, whichever reads fewer pixels (a read
costs about :data:`READ_OVERHEAD_PX` pixels of fixed overhead). Every box pixel is looked at
at full resolution (no decimated read that could miss a sliver of data), and the pixels read
are at most the occupied cells plus the boxes' overhang.

Letters: N = boxes. Pixel windows are whole pixels: a box covers the pixels it touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from fsanet_geo.errors import RasterError
from fsanet_geo.geo.reader import SceneInfo
from fsanet_geo.geo.remote import display_location, open_raster
from fsanet_geo.geo.unreadable import gdal_error_text

CELL = 1024
"""Side of the scene cells that group boxes for one read, pixels."""

READ_OVERHEAD_PX = 4096
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
    """bool [K] for the K windows of one cell: the cheaper of one union read or one read each."""
    c0, r0 = windows[:, 0].min(), windows[:, 1].min()
    c1, r1 = windows[:, 2].max(), windows[:, 3].max()
    union = int((c1 - c0) * (r1 - r0)) + READ_OVERHEAD_PX
    each = int(((windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1])).sum()) + READ_OVERHEAD_PX * len(windows)
    if each < union:
        return np.array([_valid(ds, info, w).any() for w in windows], bool)
    valid = _valid(ds, info, (c0, r0, c1, r1))
    table = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), np.int64)
    table[1:, 1:] = valid.cumsum(0, dtype=np.int64).cumsum(1)
    x0, y0, x1, y1 = (windows[:, 0] - c0, windows[:, 1] - r0, windows[:, 2] - c0, windows[:, 3] - r0)
    inside = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return inside > 0


def _valid(ds: Any, info: SceneInfo, window: Any) -> np.ndarray:
    """bool [h, w]: valid pixels of the whole-pixel window (col0, row0, col1, row1)."""
    c0, r0, c1, r1 = (int(v) for v in window)
    win = Window(c0, r0, c1 - c0, r1 - r0)
    if info.mask_kind == "mask":
        return ds.dataset_mask(window=win) > 0
    return (ds.read_masks(list(info.bands), window=win) > 0).any(axis=0)
