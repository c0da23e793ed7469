"""Precision and recall per class at one score threshold, from COCO ground truth and results.

What ``fsanet eval-map`` reports for vector layers, computed in pixels on a COCO-style set
(the validation blocks of a scene-trained run): detections at or above ``score_thr`` are
matched greedily by score to the truth boxes of their image and class at IoU >= ``iou``
(:func:`~fsanet_geo.evaluate.matching.match_boxes`); crowd/ignore truth is left out.
Letters: N = detections, M = truth boxes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fsanet_geo.evaluate.mapspace import MatchCounts
from fsanet_geo.evaluate.matching import match_boxes


def coco_xyxy(boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """float64 [N, 4] xyxy from COCO [x, y, w, h] lists."""
    a = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)


Group = tuple[Any, int]
"""(image id, category id)."""


def matched_groups(gt: dict[str, Any], dets: Sequence[dict[str, Any]], *, iou: float
                   ) -> Iterator[tuple[str, np.ndarray, np.ndarray, int]]:
    """Per (image, category) of ``gt``'s categories: ``(class name, scores [N], matched bool [N],
    truth boxes M)``, the detections matched greedily by score at ``iou`` (crowd/ignore truth
    left out)."""
    names = {int(c["id"]): str(c["name"]) for c in gt.get("categories", [])}
    truth: dict[Group, list[list[float]]] = defaultdict(list)
    for ann in gt.get("annotations", []):
        if not (ann.get("iscrowd", 0) or ann.get("ignore", 0)):
            truth[(ann["image_id"], int(ann["category_id"]))].append(ann["bbox"])
    found: dict[Group, list[dict[str, Any]]] = defaultdict(list)
    for det in dets:
        found[(det["image_id"], int(det["category_id"]))].append(det)
    for key in set(truth) | set(found):
        name = names.get(key[1])
        if name is None:
            continue
        gt_boxes, group = coco_xyxy(truth.get(key, [])), found.get(key, [])
        scores = np.asarray([d["score"] for d in group], np.float64)
        yield name, scores, match_boxes(coco_xyxy([d["bbox"] for d in group]), scores, gt_boxes, iou), len(gt_boxes)


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
    counts = {str(c["name"]): MatchCounts() for c in gt.get("categories", [])}
    kept = [d for d in dets if float(d["score"]) >= score_thr]
    for name, scores, matched, truth in matched_groups(gt, kept, iou=iou):
        c = counts[name]
        tp = int(matched.sum())
        c.tp += tp
        c.fp += len(scores) - tp
        c.fn += truth - tp
    return counts


def total_counts(counts: dict[str, MatchCounts]) -> MatchCounts:
    """The counts of every class together."""
    return MatchCounts(tp=sum(c.tp for c in counts.values()), fp=sum(c.fp for c in counts.values()),
                       fn=sum(c.fn for c in counts.values()))
