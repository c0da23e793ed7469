"""The score threshold that maximises F1 at IoU 0.5, overall and per class (training's calibration).

Detections are matched greedily by score to the truth boxes of their image and class
(:func:`~fsanet_geo.evaluate.matching.match_boxes`, as ``fsanet eval`` counts them in map
space). Greedy matching takes the detections best score first, so a detection's match does
not depend on the detections scoring below it: one matching at the lowest score gives the
counts at every threshold, as running sums over the detections sorted by score. The cut kept
is a detection score (``score >= cut`` keeps it); among equal F1 the higher cut wins (fewer
detections for the same quality). Letters: N = detections.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fsanet_geo.evaluate.class_counts import matched_groups

MATCH_IOU = 0.5
"""IoU at which a detection counts as found."""


@dataclass(frozen=True)
class ThresholdPoint:
    """One score cut and what it gives: precision, recall and F1 at IoU 0.5, and the counts."""

    score_thr: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class Calibration:
    """The F1-best cut of every class together (``overall``) and of each class with truth.

    ``per_class`` maps class name -> its own best point (classes without truth in the
    validation set are absent: they take the overall cut). ``thresholds(names)`` gives the
    cut per class in model label order.
    """

    overall: ThresholdPoint
    per_class: dict[str, ThresholdPoint]
    iou: float = MATCH_IOU

    def thresholds(self, class_names: Sequence[str]) -> tuple[float, ...]:
        """One cut per class, in ``class_names`` order (the overall cut where a class has none)."""
        return tuple(self.per_class[name].score_thr if name in self.per_class else self.overall.score_thr
                     for name in class_names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"iou", "score_thr", "precision", "recall", "f1", "tp", "fp", "fn", "classes": {...}}``."""
        return {"iou": self.iou, **asdict(self.overall),
                "classes": {name: asdict(point) for name, point in self.per_class.items()}}


def best_threshold(scores: np.ndarray, matched: np.ndarray, num_truth: int) -> ThresholdPoint | None:
    """The F1-best cut among ``scores`` [N] whose match flags are ``matched`` [N] bool, against
    ``num_truth`` truth boxes; None when there is no truth or no true positive at any cut."""
    if num_truth <= 0 or len(scores) == 0 or not bool(np.any(matched)):
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    sorted_scores = np.asarray(scores, np.float64)[order]
    tp = np.cumsum(np.asarray(matched, bool)[order])
    fp = np.arange(1, len(order) + 1) - tp
    # A cut keeps every detection scoring at or above it: only the last of a run of equal
    # scores is a place to cut.
    ends = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    tp, fp, cut = tp[ends], fp[ends], sorted_scores[ends]
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / num_truth
    f1 = np.where(tp > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1))  # the first maximum: the highest cut
    return ThresholdPoint(score_thr=float(cut[best]), precision=float(precision[best]), recall=float(recall[best]),
                          f1=float(f1[best]), tp=int(tp[best]), fp=int(fp[best]), fn=int(num_truth - tp[best]))


def calibrate(gt: dict[str, Any], dets: Sequence[dict[str, Any]], *, iou: float = MATCH_IOU) -> Calibration | None:
    """The F1-best cuts of COCO results ``dets`` against COCO truth ``gt`` (same pixels).

    Args:
        gt: ``images``, ``annotations`` (xywh ``bbox``; crowd/ignore left out), ``categories``.
        dets: ``{"image_id", "category_id", "bbox": xywh, "score"}``, predicted at a low cut.
        iou: match threshold.

    Returns:
        None when no detection matches any truth box (nothing to calibrate on).
    """
    scores: dict[str, list[np.ndarray]] = defaultdict(list)
    flags: dict[str, list[np.ndarray]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for name, group_scores, matched, truth in matched_groups(gt, dets, iou=iou):
        scores[name].append(group_scores)
        flags[name].append(matched)
        counts[name] += truth
    per_class = {}
    for name in [str(c["name"]) for c in gt.get("categories", [])]:
        if name not in scores:
            continue
        point = best_threshold(np.concatenate(scores[name]), np.concatenate(flags[name]), counts[name])
        if point is not None:
            per_class[name] = point
    everything = [s for name in scores for s in scores[name]]
    if not everything:
        return None
    overall = best_threshold(np.concatenate(everything), np.concatenate([f for name in flags for f in flags[name]]),
                             sum(counts.values()))
    return None if overall is None else Calibration(overall=overall, per_class=per_class, iou=iou)
