"""Intersecting pairs between two sets of boxes, by a uniform grid hash (numpy).

Letters: N, M = boxes of the two sets, E = pairs found. Boxes are float64 [N, 4]
(x1, y1, x2, y2) in any one unit (scene pixels in the seam merge).
"""

from __future__ import annotations

import numpy as np


def intersecting_pairs_between(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j) where boxes ``a[i]`` and ``b[j]`` intersect with positive area.

    A uniform grid hash (cell about twice the median box size): each box is entered in
    the cells it covers, entries are joined by sorting, and a pair is reported only in the
    cell holding the top-left corner of its intersection. Cost O((N + M) log M + E).

    Returns:
        ia, ib: int64 [E] indices into ``a`` and ``b``, each intersecting pair once.
    """
    empty = np.zeros(0, np.int64)
    if len(a) == 0 or len(b) == 0:
        return empty, empty
    extents = np.concatenate([a[:, 2:] - a[:, :2], b[:, 2:] - b[:, :2]]).ravel()
    cell = max(2.0 * float(np.median(extents)), float(extents.max()) / 8.0, 1.0)
    origin = np.minimum(a[:, :2].min(0), b[:, :2].min(0))

    def cell_of(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.floor((x - origin[0]) / cell).astype(np.int64),
            np.floor((y - origin[1]) / cell).astype(np.int64),
        )

    def entries(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx0, cy0 = cell_of(boxes[:, 0], boxes[:, 1])
        cx1, cy1 = cell_of(boxes[:, 2], boxes[:, 3])
        nx = cx1 - cx0 + 1
        count = nx * (cy1 - cy0 + 1)
        idx = np.repeat(np.arange(len(boxes)), count)
        k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return idx, ((cx0[idx] + k % nx[idx]) << 32) + cy0[idx] + k // nx[idx]

    a_idx, a_key = entries(a)
    b_idx, b_key = entries(b)
    order = np.argsort(b_key, kind="stable")
    b_key, b_idx = b_key[order], b_idx[order]
    lo = np.searchsorted(b_key, a_key, "left")
    count = np.searchsorted(b_key, a_key, "right") - lo
    total = int(count.sum())
    if total == 0:
        return empty, empty
    ia = np.repeat(a_idx, count)
    key = np.repeat(a_key, count)
    pos = np.repeat(lo, count) + np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    ib = b_idx[pos]
    x0 = np.maximum(a[ia, 0], b[ib, 0])
    y0 = np.maximum(a[ia, 1], b[ib, 1])
    positive = (np.minimum(a[ia, 2], b[ib, 2]) > x0) & (np.minimum(a[ia, 3], b[ib, 3]) > y0)
    cx, cy = cell_of(x0, y0)
    keep = positive & (((cx << 32) + cy) == key)
    return ia[keep], ib[keep]
