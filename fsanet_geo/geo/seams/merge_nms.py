"""Greedy NMS kernels of the cross-tile merge: the graph kernel and the dense reference.

Letters: N = detections, E = candidate pairs (graph edges). Boxes are float64 [N, 4]
(x_min, y_min, x_max, y_max) in scene pixels.

Priority of a detection (highest first): not truncated, then score, then the larger box
(of two cut copies of one object, the less cut: a box touching a tile edge may be whole or
cut); exact ties are broken by (tile index, position within the tile) ascending, so results never depend on the
order in which tiles arrive (:func:`~fsanet_geo.ops.nms_rules.priority_order`). Two
detections only interact when they come from different tiles (and, class-aware, share a
label): duplicates inside one tile were already removed by the predictor's own NMS.

Every float operation on one pair (overlap, decay, score update) comes from
:mod:`fsanet_geo.ops`, so the dense reference and the graph kernel agree bit for bit.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from fsanet_geo.errors import ConfigError
from fsanet_geo.ops.nms_rules import (
    NmsMethod,
    check_nms_options,
    interaction_threshold,
    priority_order,
    soft_decay,
)
from fsanet_geo.ops.overlap import OverlapMetric, pairwise_overlap


@dataclass(frozen=True)
class MergeOptions:
    """The rules of one seam merge; see :class:`~fsanet_geo.geo.seams.merge.SeamMerger` for each.

    Raises ConfigError for an invalid value.
    """

    iou_threshold: float = 0.5
    metric: OverlapMetric = "ios"
    method: NmsMethod = "hard"
    sigma: float = 0.5
    min_score: float = 1e-3
    class_aware: bool = True
    edge_margin: float = 1.0

    def __post_init__(self) -> None:
        check_nms_options(self.method, self.iou_threshold, self.sigma, self.metric)
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"minimum score must be in [0, 1], got {self.min_score}")
        if self.edge_margin < 0:
            raise ConfigError(f"edge margin must be >= 0 pixels, got {self.edge_margin}")

    @property
    def soft_min_score(self) -> float | None:
        """Scores below this are dropped on input (soft-NMS), None for hard NMS."""
        return None if self.method == "hard" else self.min_score


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas float64 [N] (px²) of boxes [N, 4] xyxy: the size tie-break of the merge priority."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def dense_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    tiles: np.ndarray,
    seq: np.ndarray,
    whole: np.ndarray,
    options: MergeOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain O(N^2) greedy (soft-)NMS over all pairs: the reference.

    Args: boxes [N, 4]; scores float64 [N]; labels, tiles, seq int64 [N]; whole bool [N]
    (not truncated). Returns (kept indices [K], their final scores float64 [K]).
    """
    method, threshold, sigma, min_score = (
        options.method, options.iou_threshold, options.sigma, options.min_score
    )  # fmt: skip
    n = len(boxes)
    overlap = pairwise_overlap(boxes, boxes, options.metric)
    eligible = tiles[:, None] != tiles[None, :]
    if options.class_aware:
        eligible &= labels[:, None] == labels[None, :]
    keep: list[int] = []
    if method == "hard":
        alive = np.ones(n, bool)
        above = interaction_threshold(method, threshold)
        for i in priority_order(scores, -box_area(boxes), tiles, seq, whole=whole).tolist():
            if alive[i]:
                keep.append(i)
                alive[eligible[i] & (overlap[i] > above)] = False
        kept = np.asarray(keep, np.int64)
        return kept, scores[kept].astype(np.float64)
    s = scores.astype(np.float64).copy()
    area = box_area(boxes)
    alive = s >= min_score
    out: list[float] = []
    while alive.any():
        cand = np.flatnonzero(alive)
        i = int(cand[priority_order(s[cand], -area[cand], tiles[cand], seq[cand], whole=whole[cand])[0]])
        keep.append(i)
        out.append(float(s[i]))
        alive[i] = False
        touched = alive & eligible[i]
        s[touched] = s[touched] * soft_decay(overlap[i, touched], method, threshold, sigma)
        alive[touched & (s < min_score)] = False
    return np.asarray(keep, np.int64), np.asarray(out, np.float64)


def graph_nms(
    scores: np.ndarray,
    area: np.ndarray,
    tiles: np.ndarray,
    seq: np.ndarray,
    whole: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    edge_overlap: np.ndarray,
    options: MergeOptions,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy (soft-)NMS over a sparse graph: only the E given pairs interact.

    ``area`` float64 [N]: the boxes' areas (:func:`box_area`), the tie-break after the score.
    The edges must be exactly the eligible pairs with overlap above
    :func:`~fsanet_geo.ops.nms_rules.interaction_threshold`; other pairs leave each other untouched in :func:`dense_nms`
    too (weight exactly 1.0), so both kernels give the same result.
    Returns (kept indices [K], final scores float64 [K]).
    """
    method, min_score = options.method, options.min_score
    n = len(scores)
    adjacency: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    weights = (
        np.ones(len(edge_overlap))
        if method == "hard"
        else soft_decay(edge_overlap, method, options.iou_threshold, options.sigma)
    )
    for u, v, w in zip(edge_u.tolist(), edge_v.tolist(), weights.tolist()):
        adjacency[u].append((v, w))
        adjacency[v].append((u, w))
    keep: list[int] = []
    if method == "hard":
        suppressed = [False] * n
        for i in priority_order(scores, -area, tiles, seq, whole=whole).tolist():
            if not suppressed[i]:
                keep.append(i)
                for j, _ in adjacency[i]:
                    suppressed[j] = True  # an earlier neighbour is never kept (it would have won)
        kept = np.asarray(keep, np.int64)
        return kept, scores[kept].astype(np.float64)
    s = scores.astype(np.float64).tolist()
    alive = [x >= min_score for x in s]
    w_rank = (~whole).astype(np.int64).tolist()
    a_l, t_l, q_l = (-area).tolist(), tiles.tolist(), seq.tolist()
    # Heap keys in priority order (the rule of priority_order, with current scores).
    heap = [(w_rank[i], -s[i], a_l[i], t_l[i], q_l[i], i) for i in range(n) if alive[i]]
    heapq.heapify(heap)
    out: list[float] = []
    while heap:
        _, neg_s, _, _, _, i = heapq.heappop(heap)
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
                    heapq.heappush(heap, (w_rank[j], -s[j], a_l[j], t_l[j], q_l[j], j))
    return np.asarray(keep, np.int64), np.asarray(out, np.float64)
