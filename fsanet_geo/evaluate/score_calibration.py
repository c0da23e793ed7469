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

from fsanet_geo.evaluate.matching import match_boxes

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
    names = {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}
    truth: dict[tuple[Any, int], list[list[float]]] = defaultdict(list)
    for ann in gt.get("annotations", []):
        if not (ann.get("iscrowd", 0) or ann.get("ignore", 0)):
            truth[(ann["image_id"], int(ann["category_id"]))].append(ann["bbox"])
    found: dict[tuple[Any, int], list[dict[str, Any]]] = defaultdict(list)
    for det in dets:
        found[(det["image_id"], int(det["category_id"]))].append(det)
    scores: dict[int, list[np.ndarray]] = defaultdict(list)
    flags: dict[int, list[np.ndarray]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for key in set(truth) | set(found):
        if key[1] not in names:
            continue
        gt_boxes, group = _xyxy(truth.get(key, [])), found.get(key, [])
        group_scores = np.asarray([d["score"] for d in group], np.float64)
        scores[key[1]].append(group_scores)
        flags[key[1]].append(match_boxes(_xyxy([d["bbox"] for d in group]), group_scores, gt_boxes, iou))
        counts[key[1]] += len(gt_boxes)
    per_class = {}
    for cat, name in names.items():
        if scores.get(cat):
            point = best_threshold(np.concatenate(scores[cat]), np.concatenate(flags[cat]), counts[cat])
            if point is not None:
                per_class[name] = point
    everything = [s for cat in scores for s in scores[cat]]
    if not everything:
        return None
    overall = best_threshold(np.concatenate(everything), np.concatenate([f for cat in flags for f in flags[cat]]),
                             sum(counts.values()))
    return None if overall is None else Calibration(overall=overall, per_class=per_class, iou=iou)


def _xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """float64 [N, 4] xyxy from COCO [x, y, w, h] lists."""
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
