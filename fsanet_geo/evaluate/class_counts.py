"""Precision and recall per class at one score threshold, from COCO ground truth and results.

What ``fsanet eval-map`` reports for vector layers, computed in pixels on a COCO-style set
(the validation blocks of a scene-trained run): detections at or above ``score_thr`` are
matched greedily by score to the truth boxes of their image and class at IoU >= ``iou``
(:func:`~fsanet_geo.evaluate.matching.match_boxes`); crowd/ignore truth is left out.
Letters: N = detections, M = truth boxes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from fsanet_geo.evaluate.mapspace import MatchCounts
from fsanet_geo.evaluate.matching import match_boxes


def _xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """float64 [N, 4] xyxy from COCO [x, y, w, h] lists."""
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)


def per_class_counts(
    gt: dict[str, Any], dets: Sequence[dict[str, Any]], *, score_thr: float, iou: float = 0.5
) -> dict[str, MatchCounts]:
    """Counts per category name (every category of ``gt``, in its order).

    Args:
        gt: COCO ground truth (``images``, ``annotations`` with xywh ``bbox``, ``categories``).
        dets: COCO results ``{"image_id", "category_id", "bbox": xywh, "score"}``, same pixels.
        score_thr: detections scoring below are left out.
        iou: match threshold.
    """
    names = {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}
    truth: dict[tuple[Any, int], list[list[float]]] = defaultdict(list)
    for ann in gt.get("annotations", []):
        if ann.get("iscrowd", 0) or ann.get("ignore", 0):
            continue
        truth[(ann["image_id"], int(ann["category_id"]))].append(ann["bbox"])
    found: dict[tuple[Any, int], list[dict[str, Any]]] = defaultdict(list)
    for det in dets:
        if float(det["score"]) >= score_thr:
            found[(det["image_id"], int(det["category_id"]))].append(det)
    counts = {name: MatchCounts() for name in names.values()}
    for key in set(truth) | set(found):
        name = names.get(key[1])
        if name is None:
            continue
        gt_boxes = _xyxy(truth.get(key, []))
        ds = found.get(key, [])
        matched = match_boxes(_xyxy([d["bbox"] for d in ds]), np.asarray([d["score"] for d in ds], np.float64),
                              gt_boxes, iou)
        c = counts[name]
        tp = int(matched.sum())
        c.tp += tp
        c.fp += len(ds) - tp
        c.fn += len(gt_boxes) - tp
    return counts


def total_counts(counts: dict[str, MatchCounts]) -> MatchCounts:
    """The counts of every class together."""
    return MatchCounts(tp=sum(c.tp for c in counts.values()), fp=sum(c.fp for c in counts.values()),
                       fn=sum(c.fn for c in counts.values()))
