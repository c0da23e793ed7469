"""Greedy COCO-style matching of detection boxes to truth boxes of one class: each
detection, best score first, takes the free truth box of highest IoU >= a threshold.

Letters: N = detections, M = truth boxes, P = candidate pairs. Boxes are
``(x_min, y_min, x_max, y_max)`` in any one unit (pixels or CRS units).
"""

from __future__ import annotations

import numpy as np


def match_boxes(dt: np.ndarray, scores: np.ndarray, gt: np.ndarray, iou: float) -> np.ndarray:
    """Greedy COCO-style matching of one class: bool [N], whether each detection matched a
    truth box (each truth box matches once). Arguments as :func:`match_pairs`."""
    return match_pairs(dt, scores, gt, iou) >= 0


def match_pairs(dt: np.ndarray, scores: np.ndarray, gt: np.ndarray, iou: float) -> np.ndarray:
    """Greedy COCO-style matching of one class: each detection, best score first, takes the
    free truth box of highest IoU >= ``iou``.

    Args:
        dt: float [N, 4] detection boxes (x_min, y_min, x_max, y_max), any one unit.
        scores: float [N].
        gt: float [M, 4] truth boxes in the same unit.
        iou: threshold; a pair matches when IoU >= ``iou``.

    Returns:
        int64 [N]: the truth index each detection matched, -1 for none (each truth box
        matches at most once).
    """
    matched = np.full(len(dt), -1, np.int64)
    if len(dt) == 0 or len(gt) == 0:
        return matched
    import shapely

    tree = shapely.STRtree(shapely.box(gt[:, 0], gt[:, 1], gt[:, 2], gt[:, 3]))
    d_idx, g_idx = tree.query(shapely.box(dt[:, 0], dt[:, 1], dt[:, 2], dt[:, 3]), predicate="intersects")
    pair_iou = _pair_iou(dt[d_idx], gt[g_idx])
    ok = pair_iou >= iou
    d_idx, g_idx, pair_iou = d_idx[ok], g_idx[ok], pair_iou[ok]
    candidates: dict[int, list[tuple[float, int]]] = {}
    for d, g, v in zip(d_idx.tolist(), g_idx.tolist(), pair_iou.tolist()):
        candidates.setdefault(d, []).append((v, g))
    taken = np.zeros(len(gt), bool)
    for d in np.argsort(-scores, kind="mergesort").tolist():
        best, best_g = -1.0, -1
        for v, g in candidates.get(d, ()):
            if not taken[g] and v > best:
                best, best_g = v, g
        if best_g >= 0:
            taken[best_g] = True
            matched[d] = best_g
    return matched


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of paired boxes a[i], b[i]: float [P, 4] each -> [P]."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
