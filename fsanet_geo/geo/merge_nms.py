"""Greedy NMS kernels shared by the cross-tile merge and its brute-force reference.

Letters: N = detections, E = candidate pairs (graph edges). Boxes are float64 [N, 4]
(x_min, y_min, x_max, y_max) in scene pixels.

Priority of a detection (highest first): not truncated, then score; exact ties are broken
by (tile index, position within the tile) ascending, so results never depend on the
order in which tiles arrive. Two detections only interact when they come from different
tiles (and, class-aware, share a label): duplicates inside one tile were already removed
by the predictor's own NMS.

Every float operation on one pair (overlap, decay, score update) is written once here and
used by both kernels, so the dense reference and the graph kernel agree bit for bit.
"""

from __future__ import annotations

import heapq
from typing import Literal

import numpy as np

Metric = Literal["iou", "ios"]
Method = Literal["hard", "linear", "gaussian"]


def pair_overlap(a: np.ndarray, b: np.ndarray, metric: Metric) -> np.ndarray:
    """Element-wise overlap of broadcastable box arrays ``a[..., 4]`` and ``b[..., 4]``.

    ``"iou"``: intersection over union; ``"ios"``: intersection over the smaller area
    (1.0 for a box cut by a tile edge lying inside its whole twin). 0 where an area is 0.
    """
    iw = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    if metric == "ios":
        denom = np.minimum(area_a, area_b)
    else:
        denom = area_a + area_b - inter
    inter, denom = np.broadcast_arrays(inter, denom)
    out = np.zeros(inter.shape, np.float64)
    np.divide(inter, denom, out=out, where=denom > 0)
    return out


def edge_threshold(method: Method, iou_threshold: float) -> float:
    """Pairs with overlap strictly above this value interact (suppress or decay)."""
    return 0.0 if method == "gaussian" else iou_threshold


def decay_weights(overlap: np.ndarray, method: Method, iou_threshold: float, sigma: float) -> np.ndarray:
    """Soft-NMS score multipliers: linear ``1 - o`` when ``o > thr``; Gaussian ``exp(-o^2 / sigma)``."""
    if method == "linear":
        return np.where(overlap > iou_threshold, 1.0 - overlap, 1.0)
    return np.exp(-(overlap * overlap) / sigma)


def priority_order(whole: np.ndarray, scores: np.ndarray, tiles: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Indices [N] from highest to lowest priority (see the module docstring)."""
    return np.lexsort((seq, tiles, -scores, ~whole))


def dense_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    tiles: np.ndarray,
    seq: np.ndarray,
    whole: np.ndarray,
    *,
    metric: Metric,
    method: Method,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    class_aware: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain O(N^2) greedy (soft-)NMS over all pairs: the reference.

    Args: boxes [N, 4]; scores float64 [N]; labels, tiles, seq int64 [N]; whole bool [N]
    (not truncated). Returns (kept indices [K], their final scores float64 [K]).
    """
    n = len(boxes)
    overlap = pair_overlap(boxes[:, None, :], boxes[None, :, :], metric)
    eligible = tiles[:, None] != tiles[None, :]
    if class_aware:
        eligible &= labels[:, None] == labels[None, :]
    keep: list[int] = []
    if method == "hard":
        alive = np.ones(n, bool)
        for i in priority_order(whole, scores, tiles, seq).tolist():
            if alive[i]:
                keep.append(i)
                alive[eligible[i] & (overlap[i] > iou_threshold)] = False
        kept = np.asarray(keep, np.int64)
        return kept, scores[kept].astype(np.float64)
    s = scores.astype(np.float64).copy()
    alive = s >= min_score
    out: list[float] = []
    while alive.any():
        cand = np.flatnonzero(alive)
        cand = cand[whole[cand] == whole[cand].max()]
        cand = cand[s[cand] == s[cand].max()]
        cand = cand[tiles[cand] == tiles[cand].min()]
        i = int(cand[np.argmin(seq[cand])])
        keep.append(i)
        out.append(float(s[i]))
        alive[i] = False
        touched = alive & eligible[i]
        s[touched] = s[touched] * decay_weights(overlap[i, touched], method, iou_threshold, sigma)
        alive[touched & (s < min_score)] = False
    return np.asarray(keep, np.int64), np.asarray(out, np.float64)


def graph_nms(
    scores: np.ndarray,
    tiles: np.ndarray,
    seq: np.ndarray,
    whole: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    edge_overlap: np.ndarray,
    *,
    method: Method,
    iou_threshold: float,
    sigma: float,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy (soft-)NMS over a sparse graph: only the E given pairs interact.

    The edges must be exactly the eligible pairs with overlap above
    :func:`edge_threshold`; other pairs leave each other untouched in :func:`dense_nms`
    too (weight exactly 1.0), so both kernels give the same result.
    Returns (kept indices [K], final scores float64 [K]).
    """
    n = len(scores)
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    weights = (
        np.ones(len(edge_overlap))
        if method == "hard"
        else decay_weights(edge_overlap, method, iou_threshold, sigma)
    )
    for u, v, w in zip(edge_u.tolist(), edge_v.tolist(), weights.tolist()):
        adjacency[u].append((v, w))
        adjacency[v].append((u, w))
    keep: list[int] = []
    if method == "hard":
        suppressed = [False] * n
        for i in priority_order(whole, scores, tiles, seq).tolist():
            if not suppressed[i]:
                keep.append(i)
                for j, _ in adjacency[i]:
                    suppressed[j] = True  # an earlier neighbour is never kept (it would have won)
        kept = np.asarray(keep, np.int64)
        return kept, scores[kept].astype(np.float64)
    s = scores.astype(np.float64).tolist()
    alive = [x >= min_score for x in s]
    w_rank = (~whole).astype(np.int64).tolist()
    t_l, q_l = tiles.tolist(), seq.tolist()
    heap = [(w_rank[i], -s[i], t_l[i], q_l[i], i) for i in range(n) if alive[i]]
    heapq.heapify(heap)
    out: list[float] = []
    while heap:
        _, neg_s, _, _, i = heapq.heappop(heap)
        if not alive[i] or -neg_s != s[i]:
            continue  # stale entry left by a decay
        alive[i] = False
        keep.append(i)
        out.append(s[i])
        for j, w in adjacency[i]:
            if alive[j]:
                s[j] = s[j] * w
                if s[j] < min_score:
                    alive[j] = False
                else:
                    heapq.heappush(heap, (w_rank[j], -s[j], t_l[j], q_l[j], j))
    return np.asarray(keep, np.int64), np.asarray(out, np.float64)


def overlapping_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs (i, j) where boxes ``a[i]`` and ``b[j]`` intersect with positive area.

    A uniform grid hash (cell about twice the median box size): each box is entered in
    the cells it covers, entries are joined by sorting, and a pair is reported only in the
    cell holding the top-left corner of its intersection. Cost O((n + m) log m + pairs).
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
