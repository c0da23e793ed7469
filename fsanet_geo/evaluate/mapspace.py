"""Evaluation in map space: detections and ground truth as vector layers of one scene.

Each feature is reduced to its axis-aligned bounding box in the working CRS (the truth's
CRS; a geographic truth CRS is replaced by its UTM zone so that boxes are in metres).
Boxes are matched greedily by score, per class name, as COCO does
(:func:`fsanet_geo.evaluate.matching.match_pairs`). The AI-TOD-protocol
AP treats the whole scene as one image; its area ranges (pixels^2) need the pixel size,
and so do the counts per AI-TOD size range (very tiny < 8 px, tiny 8-16 px, small 16-32 px,
medium >= 32 px, as the square root of the box area), which say where a model's misses are.

Letters: N = detections, M = truth features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.evaluate.aitod_protocol import AREA_KEYS, AREA_RANGES, EvalResult, evaluate_coco
from fsanet_geo.evaluate.map_area import ScoredArea, centred_in, scored_area
from fsanet_geo.evaluate.map_layers import (
    CLASS,
    common_crs,
    crs_name,
    drop_unusable,
    pixel_size_from,
    pixel_size_from_pixel_columns,
    read_detections,
    read_truth,
)
from fsanet_geo.evaluate.matching import match_pairs


@dataclass
class MatchCounts:
    """True/false positives and false negatives, with the derived rates (0 when undefined)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass
class MapEvalResult:
    """Map-space metrics of one scene.

    Attributes:
        iou: IoU threshold of the precision/recall matching.
        score_threshold: detections below it were left out of precision/recall (not of AP).
        overall: counts over all classes.
        per_class: counts per class name (union of both layers' classes).
        coco: the AI-TOD-protocol result with the scene as one image (maxDets raised to the
            number of detections so a large scene is not truncated). Area-range numbers are
            removed from its stats when the pixel size is unknown.
        crs: the working CRS (WKT-free string, e.g. ``EPSG:32633``), None for pixel layers.
        pixel_size: ground size of one pixel in working-CRS units, None when unknown.
        dropped: features left out because their geometry or class was empty or missing.
        per_size: counts per AI-TOD size range (``verytiny``, ``tiny``, ``small``,
            ``medium``; empty when the pixel size is unknown), from the same matching as
            ``overall``, COCO's way: a truth box and the detection matched to it count in
            the truth box's range (TP, or FN when unmatched); an unmatched detection is a
            FP in its own box's range. Ranges are half-open, [low, high) pixels^2, so
            they partition the boxes and sum to ``overall``'s counts (COCO's area ranges,
            used by the AP split, are closed: a box of exactly 8, 16 or 32 px counts in
            both neighbouring ranges there).
        only_in_truth, only_in_detections: classes found in one layer only (sorted).
        area: where objects were counted (None: everywhere), see :mod:`fsanet_geo.evaluate.map_area`.
    """

    iou: float
    score_threshold: float | None
    overall: MatchCounts
    per_class: dict[str, MatchCounts]
    coco: EvalResult
    crs: str | None
    pixel_size: float | None
    dropped: dict[str, int] = field(default_factory=dict)
    per_size: dict[str, MatchCounts] = field(default_factory=dict)
    only_in_truth: list[str] = field(default_factory=list)
    only_in_detections: list[str] = field(default_factory=list)
    area: ScoredArea | None = None

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict[str, Any]:
        """Every number as JSON-safe values."""
        return {
            "mode": "map",
            "iou": self.iou,
            "score_threshold": self.score_threshold,
            "crs": self.crs,
            "pixel_size": self.pixel_size,
            "area_split": self.pixel_size is not None,
            "overall": self.overall.to_dict(),
            "per_class": {k: v.to_dict() for k, v in self.per_class.items()},
            "per_size": {k: v.to_dict() for k, v in self.per_size.items()},
            "dropped": dict(self.dropped),
            "only_in_truth": list(self.only_in_truth),
            "only_in_detections": list(self.only_in_detections),
            "area": None if self.area is None else self.area.to_dict(),
            "aitod": self.coco.to_dict(),
        }


def evaluate_vectors(
    truth: Path | str,
    detections: Path | str,
    *,
    iou: float = 0.5,
    score_threshold: float | None = None,
    class_column: str = "class_name",
    truth_class_field: str | None = None,
    score_column: str = "score",
    pixel_size: float | None = None,
    aoi: str | None = None,
) -> MapEvalResult:
    """Compare a detections layer with a ground-truth layer of the same scene.

    Args:
        truth: vector file (GeoPackage, GeoJSON, shapefile...) of true objects.
        detections: vector file with ``class_column`` and ``score_column`` (a missing score
            column means every score is 1). Reprojected to the truth's CRS when they differ.
        iou: IoU threshold for precision/recall, in (0, 1].
        score_threshold: only detections with score >= it count for precision/recall
            (default: all). AP always uses every detection.
        class_column: the detections' class attribute (classes are matched by name).
        truth_class_field: the truth's class attribute, read as ``fsanet train --class-field``
            reads it; None: the truth's ``class_column``.
        score_column: attribute holding the detection score.
        pixel_size: ground size of one pixel in working-CRS units (metres for UTM). When
            None: a ``pixel_size`` column or layer-metadata item of either layer, else the
            ratio of map to pixel box widths when the detections carry the detect
            pipeline's ``x_min``/``x_max`` pixel columns and are in the working CRS.
            Without any, AP is reported without the area split.
        aoi: a vector file of polygons (any CRS): only objects centred inside are scored.
            Without it, the area is the detections' scene footprint or the layers' common
            extent where they differ (:mod:`fsanet_geo.evaluate.map_area`).

    Layers without a CRS are taken as pixel layers (y down, pixel size 1) and only
    accepted when both lack a CRS.
    """
    if not 0.0 < iou <= 1.0:
        raise ConfigError(f"iou must be in (0, 1], got {iou}")
    if pixel_size is not None and not pixel_size > 0:
        raise ConfigError(f"pixel_size must be > 0, got {pixel_size}")
    field = truth_class_field if truth_class_field is not None else class_column
    truth_df = read_truth(Path(truth), field, given=truth_class_field is not None)
    det_df = read_detections(Path(detections), class_column)

    from_pixel_columns = pixel_size_from_pixel_columns(det_df)
    det_crs = det_df.crs
    truth_df, det_df, crs = common_crs(truth_df, det_df)
    if pixel_size is None and crs is None:
        pixel_size = 1.0
    if pixel_size is None:
        pixel_size = pixel_size_from(Path(detections), det_df) or pixel_size_from(Path(truth), truth_df)
    if pixel_size is None and det_crs == crs:
        pixel_size = from_pixel_columns

    dropped = {}
    truth_df, dropped["truth"] = drop_unusable(truth_df)
    det_df, dropped["detections"] = drop_unusable(det_df)
    gt_boxes = truth_df.geometry.bounds.to_numpy(np.float64).reshape(-1, 4)
    dt_boxes = det_df.geometry.bounds.to_numpy(np.float64).reshape(-1, 4)
    area = scored_area(gt_boxes, dt_boxes, crs, Path(detections), aoi)
    if area is not None:
        gt_in, dt_in = centred_in(area, gt_boxes), centred_in(area, dt_boxes)
        area.truth_outside, area.detections_outside = int((~gt_in).sum()), int((~dt_in).sum())
        truth_df, det_df, gt_boxes, dt_boxes = truth_df[gt_in], det_df[dt_in], gt_boxes[gt_in], dt_boxes[dt_in]

    gt_names = truth_df[CLASS].astype(str).to_numpy()
    dt_names = det_df[CLASS].astype(str).to_numpy()
    if score_column in det_df.columns:
        scores = det_df[score_column].to_numpy(np.float64)
        if not np.all(np.isfinite(scores)):
            raise DatasetError(f"the detections layer has missing or non-finite {score_column!r} values")
    else:
        scores = np.ones(len(det_df), np.float64)

    truth_classes, found_classes = set(gt_names.tolist()), set(dt_names.tolist())
    classes = sorted(truth_classes | found_classes)
    keep = scores >= score_threshold if score_threshold is not None else np.ones(len(scores), bool)
    per_class: dict[str, MatchCounts] = {}
    gt_found = np.zeros(len(gt_boxes), bool)  # truth matched by a kept detection
    dt_found = np.zeros(len(dt_boxes), bool)  # kept detection matched to a truth box
    for name in classes:
        g = np.flatnonzero(gt_names == name)
        d = np.flatnonzero((dt_names == name) & keep)
        pairs = match_pairs(dt_boxes[d], scores[d], gt_boxes[g], iou)
        dt_found[d[pairs >= 0]] = True
        gt_found[g[pairs[pairs >= 0]]] = True
        tp = int((pairs >= 0).sum())
        per_class[name] = MatchCounts(tp=tp, fp=len(d) - tp, fn=len(g) - tp)
    per_size = {}
    if pixel_size is not None:
        per_size = _counts_per_size(gt_boxes, gt_found, dt_boxes[keep], dt_found[keep], pixel_size)
    overall = MatchCounts(
        tp=sum(c.tp for c in per_class.values()),
        fp=sum(c.fp for c in per_class.values()),
        fn=sum(c.fn for c in per_class.values()),
    )

    coco = _scene_ap(gt_boxes, gt_names, dt_boxes, dt_names, scores, classes, pixel_size, crs is None)
    return MapEvalResult(
        iou=iou,
        score_threshold=score_threshold,
        overall=overall,
        per_class=per_class,
        coco=coco,
        crs=crs_name(crs),
        pixel_size=pixel_size,
        dropped=dropped,
        per_size=per_size,
        only_in_truth=sorted(truth_classes - found_classes),
        only_in_detections=sorted(found_classes - truth_classes),
        area=area,
    )


def _counts_per_size(
    gt_boxes: np.ndarray, gt_found: np.ndarray, dt_boxes: np.ndarray, dt_found: np.ndarray, pixel_size: float
) -> dict[str, MatchCounts]:
    """TP/FN by truth size and FP by detection size, per AI-TOD range (see MapEvalResult).

    Args:
        gt_boxes: float [M, 4], working-CRS units; gt_found: bool [M] matched.
        dt_boxes: float [N, 4] the kept detections; dt_found: bool [N] matched.
        pixel_size: working-CRS units per pixel (areas are compared in pixels^2).
    """

    def areas(b: np.ndarray) -> np.ndarray:
        return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / pixel_size**2

    gt_area, dt_area = areas(gt_boxes), areas(dt_boxes)
    counts = {}
    for label in AREA_KEYS:
        low, high = AREA_RANGES[label]
        g = (gt_area >= low) & (gt_area < high)
        d = (dt_area >= low) & (dt_area < high)
        counts[label] = MatchCounts(
            tp=int((g & gt_found).sum()), fp=int((d & ~dt_found).sum()), fn=int((g & ~gt_found).sum())
        )
    return counts


def _scene_ap(
    gt_boxes: np.ndarray,
    gt_names: np.ndarray,
    dt_boxes: np.ndarray,
    dt_names: np.ndarray,
    scores: np.ndarray,
    classes: list[str],
    pixel_size: float | None,
    y_down: bool,
) -> EvalResult:
    """AI-TOD AP with the scene as one COCO image, boxes in pixels when the size is known."""
    unit = pixel_size or 1.0
    all_boxes = np.concatenate([gt_boxes, dt_boxes]) if len(gt_boxes) + len(dt_boxes) else np.zeros((1, 4))
    x0, y0 = all_boxes[:, 0].min(), all_boxes[:, 1].min()
    y1 = all_boxes[:, 3].max()

    def to_xywh(b: np.ndarray) -> list[list[float]]:
        x = (b[:, 0] - x0) / unit
        # map y grows upwards: the top edge (y_max) becomes the pixel row
        y = (b[:, 1] - y0) / unit if y_down else (y1 - b[:, 3]) / unit
        w = (b[:, 2] - b[:, 0]) / unit
        h = (b[:, 3] - b[:, 1]) / unit
        return np.stack([x, y, w, h], axis=1).tolist()

    cat_id = {name: i + 1 for i, name in enumerate(classes)}
    width = float((all_boxes[:, 2].max() - x0) / unit)
    height = float((y1 - y0) / unit)
    gt = {
        "images": [{"id": 1, "width": width, "height": height, "file_name": "scene"}],
        "categories": [{"id": cat_id[n], "name": n} for n in classes],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": cat_id[n], "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            for i, (n, box) in enumerate(zip(gt_names.tolist(), to_xywh(gt_boxes)))
        ],
    }
    dets = [
        {"image_id": 1, "category_id": cat_id[n], "bbox": box, "score": float(s)}
        for n, box, s in zip(dt_names.tolist(), to_xywh(dt_boxes), scores.tolist())
    ]
    result = evaluate_coco(gt, dets, max_dets=max(1500, len(dets)))
    if pixel_size is None:
        for key in AREA_KEYS.values():
            result.stats.pop(f"AP{key}", None)
            result.stats.pop(f"AR{key}", None)
    return result
