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
        dropped: features left out because their geometry was empty or missing.
        per_size: counts per AI-TOD size range (``verytiny``, ``tiny``, ``small``,
            ``medium``; empty when the pixel size is unknown), from the same matching as
            ``overall``, COCO's way: a truth box and the detection matched to it count in
            the truth box's range (TP, or FN when unmatched); an unmatched detection is a
            FP in its own box's range. Ranges are half-open, [low, high) pixels^2, so
            they partition the boxes and sum to ``overall``'s counts (COCO's area ranges,
            used by the AP split, are closed: a box of exactly 8, 16 or 32 px counts in
            both neighbouring ranges there).
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
            "aitod": self.coco.to_dict(),
        }


def evaluate_vectors(
    truth: Path | str,
    detections: Path | str,
    *,
    iou: float = 0.5,
    score_threshold: float | None = None,
    class_column: str = "class_name",
    score_column: str = "score",
    pixel_size: float | None = None,
) -> MapEvalResult:
    """Compare a detections layer with a ground-truth layer of the same scene.

    Args:
        truth: vector file (GeoPackage, GeoJSON, shapefile...) of true objects with a
            ``class_column``.
        detections: vector file with ``class_column`` and ``score_column`` (a missing score
            column means every score is 1). Reprojected to the truth's CRS when they differ.
        iou: IoU threshold for precision/recall, in (0, 1].
        score_threshold: only detections with score >= it count for precision/recall
            (default: all). AP always uses every detection.
        class_column: attribute holding the class name (matched by name across layers).
        score_column: attribute holding the detection score.
        pixel_size: ground size of one pixel in working-CRS units (metres for UTM). When
            None: a ``pixel_size`` column or layer-metadata item of either layer, else the
            ratio of map to pixel box widths when the detections carry the detect
            pipeline's ``x_min``/``x_max`` pixel columns and are in the working CRS.
            Without any, AP is reported without the area split.

    Layers without a CRS are taken as pixel layers (y down, pixel size 1) and only
    accepted when both lack a CRS.
    """
    if not 0.0 < iou <= 1.0:
        raise ConfigError(f"iou must be in (0, 1], got {iou}")
    if pixel_size is not None and not pixel_size > 0:
        raise ConfigError(f"pixel_size must be > 0, got {pixel_size}")
    truth_df = _read_layer(Path(truth), "truth")
    det_df = _read_layer(Path(detections), "detections")
    for name, df in (("truth", truth_df), ("detections", det_df)):
        if class_column not in df.columns:
            raise DatasetError(
                f"the {name} layer has no {class_column!r} column "
                f"(columns: {', '.join(c for c in df.columns if c != df.geometry.name)})"
            )

    from_pixel_columns = _pixel_size_from_pixel_columns(det_df)
    det_crs = det_df.crs
    truth_df, det_df, crs = _common_crs(truth_df, det_df)
    if pixel_size is None and crs is None:
        pixel_size = 1.0
    if pixel_size is None:
        pixel_size = _pixel_size_from(Path(detections), det_df) or _pixel_size_from(Path(truth), truth_df)
    if pixel_size is None and det_crs == crs:
        pixel_size = from_pixel_columns

    dropped = {}
    truth_df, dropped["truth"] = _drop_empty(truth_df)
    det_df, dropped["detections"] = _drop_empty(det_df)

    gt_boxes = truth_df.geometry.bounds.to_numpy(np.float64).reshape(-1, 4)
    dt_boxes = det_df.geometry.bounds.to_numpy(np.float64).reshape(-1, 4)
    gt_names = truth_df[class_column].astype(str).to_numpy()
    dt_names = det_df[class_column].astype(str).to_numpy()
    if score_column in det_df.columns:
        scores = det_df[score_column].to_numpy(np.float64)
        if not np.all(np.isfinite(scores)):
            raise DatasetError(f"the detections layer has missing or non-finite {score_column!r} values")
    else:
        scores = np.ones(len(det_df), np.float64)

    classes = sorted(set(gt_names.tolist()) | set(dt_names.tolist()))
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
        crs=_crs_name(crs),
        pixel_size=pixel_size,
        dropped=dropped,
        per_size=per_size,
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


def _read_layer(path: Path, what: str) -> Any:
    import geopandas as gpd

    if not path.exists():
        raise DatasetError(f"{what} file {path} does not exist")
    try:
        return gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several DataSourceError types
        raise DatasetError(f"cannot read the {what} layer {path}: {exc}") from exc


def _common_crs(truth: Any, det: Any) -> tuple[Any, Any, Any]:
    """Put both layers in one working CRS (projected); None when both are pixel layers."""
    if truth.crs is None and det.crs is None:
        return truth, det, None
    if truth.crs is None or det.crs is None:
        missing = "truth" if truth.crs is None else "detections"
        raise DatasetError(
            f"the {missing} layer has no CRS but the other has one: both must be georeferenced "
            "(or both in pixel coordinates)"
        )
    crs = truth.crs
    if crs.is_geographic:
        if len(truth):
            crs = truth.estimate_utm_crs()
        elif len(det):
            crs = det.to_crs(truth.crs).estimate_utm_crs()
    if truth.crs != crs:
        truth = truth.to_crs(crs)
    if det.crs != crs:
        det = det.to_crs(crs)
    return truth, det, crs


def _pixel_size_from(path: Path, df: Any) -> float | None:
    """A ``pixel_size`` column (first value) or layer-metadata item, if present and > 0."""
    value: Any = None
    if "pixel_size" in df.columns and len(df):
        value = df["pixel_size"].iloc[0]
    else:
        try:
            import pyogrio

            meta = pyogrio.read_info(path).get("layer_metadata") or {}
            value = meta.get("pixel_size")
        except Exception:  # noqa: BLE001 - metadata is optional
            value = None
    try:
        size = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return size if size is not None and np.isfinite(size) and size > 0 else None


def _pixel_size_from_pixel_columns(df: Any) -> float | None:
    """Pixel size implied by the detect pipeline's x_min/x_max pixel columns: the median of
    (map-unit box width / pixel box width), in the layer's own CRS units."""
    if not {"x_min", "x_max"} <= set(df.columns) or not len(df):
        return None
    px = (df["x_max"] - df["x_min"]).to_numpy(np.float64)
    bounds = df.geometry.bounds
    mapw = (bounds["maxx"] - bounds["minx"]).to_numpy(np.float64)
    ok = np.isfinite(px) & np.isfinite(mapw) & (px > 0) & (mapw > 0)
    if not ok.any():
        return None
    return float(np.median(mapw[ok] / px[ok]))


def _drop_empty(df: Any) -> tuple[Any, int]:
    bad = df.geometry.isna() | df.geometry.is_empty
    return df.loc[~bad], int(bad.sum())


def _crs_name(crs: Any) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()
