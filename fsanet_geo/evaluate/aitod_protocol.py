"""The AI-TOD evaluation protocol on top of faster-coco-eval's COCO evaluator.

Protocol (the aitodpycocotools variant of the COCO API): IoU 0.50:0.95 in steps of 0.05,
101 recall points, maxDets (1, 100, 1500) with every AP taken at 1500, and area ranges
by annotation area in pixels^2: all, very tiny [0, 8^2], tiny [8^2, 16^2],
small [16^2, 32^2], medium [32^2, 1e5^2].

Semantics kept from pycocotools (so numbers equal aitodpycocotools):
- A ground-truth box with ``iscrowd=1`` is an ignore region: detections matched to it
  count neither as true nor as false positives. A dataset ``ignore`` flag is overridden
  by ``iscrowd``, exactly as pycocotools does for boxes.
- The area range of a ground-truth box uses its ``area`` field (filled with w * h when
  missing); that of a detection uses w * h.
- At most ``max_dets`` detections per image and category, highest scores first.
- A value of -1 means "undefined": no (non-crowd) ground truth in that category or area
  range. Means over categories skip -1 entries; a metric that is -1 everywhere stays -1.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.io_utils import atomic_path

IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, 10)
"""The ten IoU thresholds .50:.05:.95 (same construction as pycocotools)."""

AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2),
    "verytiny": (0.0, 8.0**2),
    "tiny": (8.0**2, 16.0**2),
    "small": (16.0**2, 32.0**2),
    "medium": (32.0**2, 1e5**2),
}
"""AI-TOD area ranges, pixels^2, in the evaluator's order."""

AREA_KEYS: dict[str, str] = {"verytiny": "vt", "tiny": "t", "small": "s", "medium": "m"}

HEADLINE_KEYS: tuple[str, ...] = ("AP", "AP50", "AP75", "APvt", "APt", "APs", "APm")
"""The numbers papers quote for AI-TOD."""

_DET_KEYS = ("image_id", "category_id", "bbox", "score")


@dataclass
class EvalResult:
    """Metrics of one evaluation.

    Attributes:
        stats: AP, AP50, AP75, APvt, APt, APs, APm (all at ``max_dets``), AR1, AR100,
            AR (at ``max_dets``), ARvt, ARt, ARs, ARm; fractions in [0, 1], -1 if undefined.
        per_class: AP (.50:.95, area all, ``max_dets``) per category name, -1 when the
            category has no ground truth.
        precision: array[T, R, K, A, M] as in COCO (T IoU thresholds, R = 101 recall
            points, K categories, A area ranges, M maxDets), -1 where undefined.
        recall: array[T, K, A, M].
        class_names: the K category names, in category-id order.
        category_ids: the K COCO category ids.
        iou_thresholds: the T thresholds.
        area_labels: the A area labels (all, verytiny, tiny, small, medium).
        max_dets: the M maxDets values (the last is the one every AP uses).
        counts: images, ground-truth boxes (non-crowd) and detections evaluated.
    """

    stats: dict[str, float]
    per_class: dict[str, float]
    precision: np.ndarray
    recall: np.ndarray
    class_names: list[str]
    category_ids: list[int]
    iou_thresholds: np.ndarray
    area_labels: list[str]
    max_dets: list[int]
    counts: dict[str, int] = field(default_factory=dict)

    def per_class_ap50(self) -> dict[str, float]:
        """AP at IoU 0.50 (area all, ``max_dets``) per category name."""
        t = int(np.argmin(np.abs(self.iou_thresholds - 0.5)))
        return {
            name: _mean_defined(self.precision[t, :, k, 0, -1])
            for k, name in enumerate(self.class_names)
        }

    def to_dict(self) -> dict[str, Any]:
        """Every number as plain JSON-safe Python values (no arrays of curves)."""
        return {
            "protocol": {
                "name": "aitod",
                "iou_thresholds": [round(float(t), 2) for t in self.iou_thresholds],
                "area_ranges": {k: list(AREA_RANGES[k]) for k in self.area_labels},
                "max_dets": list(self.max_dets),
                "undefined_value": -1,
            },
            "stats": {k: float(v) for k, v in self.stats.items()},
            "per_class_ap": {k: float(v) for k, v in self.per_class.items()},
            "per_class_ap50": self.per_class_ap50(),
            "category_ids": dict(zip(self.class_names, self.category_ids)),
            "counts": dict(self.counts),
        }


def load_json(path: Path, what: str) -> Any:
    """Read a JSON file; a missing or malformed file raises :class:`DatasetError`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what} {path} is not valid JSON: {exc}") from exc


def save_json(data: Any, path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Write ``data`` as indented JSON (atomically); an existing file is replaced only
    with ``overwrite`` (:class:`FileOverwriteError` otherwise)."""
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def evaluate_coco(
    gt: Mapping[str, Any] | Path | str,
    detections: Sequence[Mapping[str, Any]] | Path | str,
    *,
    max_dets: int = 1500,
) -> EvalResult:
    """Score COCO-format box detections against COCO ground truth with the AI-TOD protocol.

    Args:
        gt: a COCO dataset dict (``images``, ``annotations``, ``categories``) or its JSON path.
            Boxes ``[x, y, w, h]`` in image pixels.
        detections: COCO results: a list of ``{"image_id", "category_id", "bbox": [x, y, w, h]
            pixels, "score"}`` or the path of such a JSON list.
        max_dets: detections kept per image and category (1500 for AI-TOD).

    The inputs are not modified. Raises :class:`DatasetError` for malformed input.
    """
    if isinstance(max_dets, bool) or not isinstance(max_dets, int) or max_dets < 1:
        raise ConfigError(f"max_dets must be a positive integer, got {max_dets!r}")
    gt_dict = load_json(Path(gt), "ground-truth file") if isinstance(gt, (str, Path)) else gt
    dets = (
        load_json(Path(detections), "detections file")
        if isinstance(detections, (str, Path))
        else detections
    )
    gt_clean = _normalise_gt(gt_dict)
    dets_clean = _normalise_detections(dets, gt_clean)
    return _run_evaluator(gt_clean, dets_clean, max_dets)


def _run_evaluator(gt: dict[str, Any], dets: list[dict[str, Any]], max_dets: int) -> EvalResult:
    from faster_coco_eval import COCO, COCOeval_faster

    cats = sorted(gt["categories"], key=lambda c: c["id"])
    category_ids = [int(c["id"]) for c in cats]
    class_names = [str(c.get("name", c["id"])) for c in cats]
    max_dets_list = sorted({1, min(100, max_dets), max_dets})

    coco_gt = COCO(gt)
    coco_dt = coco_gt.loadRes(dets)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=_silent)
    p = evaluator.params
    p.imgIds = sorted(int(im["id"]) for im in gt["images"])
    p.catIds = category_ids
    p.iouThrs = IOU_THRESHOLDS.copy()
    p.maxDets = max_dets_list
    p.areaRng = [list(r) for r in AREA_RANGES.values()]
    p.areaRngLbl = list(AREA_RANGES)

    k, a, m = len(category_ids), len(AREA_RANGES), len(max_dets_list)
    t, r = len(IOU_THRESHOLDS), len(p.recThrs)
    if not p.imgIds or not category_ids:
        precision = -np.ones((t, r, k, a, m))
        recall = -np.ones((t, k, a, m))
    else:
        evaluator.evaluate()
        evaluator.accumulate()
        precision = np.asarray(evaluator.eval["precision"], dtype=np.float64).reshape(t, r, k, a, m)
        recall = np.asarray(evaluator.eval["recall"], dtype=np.float64).reshape(t, k, a, m)

    stats = _summarise(precision, recall, max_dets_list)
    per_class = {
        name: _mean_defined(precision[:, :, i, 0, -1]) for i, name in enumerate(class_names)
    }
    counts = {
        "images": len(gt["images"]),
        "ground_truth": sum(1 for ann in gt["annotations"] if not ann.get("iscrowd", 0)),
        "crowd": sum(1 for ann in gt["annotations"] if ann.get("iscrowd", 0)),
        "detections": len(dets),
    }
    return EvalResult(
        stats=stats,
        per_class=per_class,
        precision=precision,
        recall=recall,
        class_names=class_names,
        category_ids=category_ids,
        iou_thresholds=IOU_THRESHOLDS.copy(),
        area_labels=list(AREA_RANGES),
        max_dets=max_dets_list,
        counts=counts,
    )


def _summarise(precision: np.ndarray, recall: np.ndarray, max_dets: list[int]) -> dict[str, float]:
    """COCO ``summarize`` for the AI-TOD table. precision [T,R,K,A,M], recall [T,K,A,M]."""
    t50 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.5)))
    t75 = int(np.argmin(np.abs(IOU_THRESHOLDS - 0.75)))
    stats: dict[str, float] = {
        "AP": _mean_defined(precision[:, :, :, 0, -1]),
        "AP50": _mean_defined(precision[t50, :, :, 0, -1]),
        "AP75": _mean_defined(precision[t75, :, :, 0, -1]),
    }
    labels = list(AREA_RANGES)
    for label, key in AREA_KEYS.items():
        stats[f"AP{key}"] = _mean_defined(precision[:, :, :, labels.index(label), -1])
    for i, md in enumerate(max_dets[:-1]):
        stats[f"AR{md}"] = _mean_defined(recall[:, :, 0, i])
    stats["AR"] = _mean_defined(recall[:, :, 0, -1])
    for label, key in AREA_KEYS.items():
        stats[f"AR{key}"] = _mean_defined(recall[:, :, labels.index(label), -1])
    return stats


def _mean_defined(values: np.ndarray) -> float:
    """Mean of the entries > -1 (COCO's convention); -1 when there are none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[v > -1]
    return float(v.mean()) if v.size else -1.0


def _silent(*_args: Any, **_kwargs: Any) -> None:
    """The evaluator's print function: the library never prints."""


def _normalise_gt(gt: Any) -> dict[str, Any]:
    """Validate COCO ground truth and return a copy with ``id``, ``area``, ``iscrowd`` set."""
    if not isinstance(gt, Mapping):
        raise DatasetError(f"ground truth must be a COCO JSON object, got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise DatasetError(f"ground truth is not COCO: missing list {key!r}")
    images = []
    for im in gt["images"]:
        if not isinstance(im, Mapping) or "id" not in im:
            raise DatasetError("ground truth is not COCO: an image entry has no 'id'")
        images.append(dict(im))
    categories = []
    for cat in gt["categories"]:
        if not isinstance(cat, Mapping) or "id" not in cat:
            raise DatasetError("ground truth is not COCO: a category entry has no 'id'")
        categories.append(dict(cat))
    image_ids = {im["id"] for im in images}
    cat_ids = {c["id"] for c in categories}
    annotations = []
    used_ids: set[Any] = {a.get("id") for a in gt["annotations"] if isinstance(a, Mapping)}
    next_id = 1 + max((i for i in used_ids if isinstance(i, int)), default=0)
    seen: set[Any] = set()
    for n, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, Mapping):
            raise DatasetError(f"ground-truth annotation #{n} is not an object")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DatasetError(f"ground-truth annotation #{n} has no {key!r}")
        if ann["image_id"] not in image_ids:
            raise DatasetError(f"ground-truth annotation #{n} refers to unknown image id {ann['image_id']!r}")
        if ann["category_id"] not in cat_ids:
            raise DatasetError(
                f"ground-truth annotation #{n} has unknown category id {ann['category_id']!r}"
            )
        box = _check_box(ann["bbox"], f"ground-truth annotation #{n}")
        a = dict(ann)
        a["bbox"] = box
        if a.get("id") is None or a["id"] in seen:
            a["id"] = next_id
            next_id += 1
        seen.add(a["id"])
        if "area" not in a or not _is_finite_number(a["area"]):
            a["area"] = box[2] * box[3]
        a["iscrowd"] = int(bool(a.get("iscrowd", 0)))
        annotations.append(a)
    out = {k: v for k, v in gt.items() if k not in ("images", "annotations", "categories")}
    out.update(images=images, annotations=annotations, categories=categories)
    return out


def _normalise_detections(dets: Any, gt: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate COCO results against ``gt``; return fresh dicts (the evaluator mutates them).

    A vectorised check runs first; when it finds anything wrong, a per-item pass names
    the first offender.
    """
    if not isinstance(dets, (list, tuple)):
        raise DatasetError(
            f"detections must be a JSON list of COCO results, got {type(dets).__name__}"
        )
    image_ids = {im["id"] for im in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    if not dets:
        return []
    try:
        det_images = [d["image_id"] for d in dets]
        det_cats = [d["category_id"] for d in dets]
        boxes = np.asarray([d["bbox"] for d in dets])
        scores = np.asarray([d["score"] for d in dets])
    except (KeyError, TypeError, ValueError):
        _raise_first_bad_detection(dets, image_ids, cat_ids)
        raise  # unreachable: the per-item pass raises
    ok = (
        boxes.dtype.kind in "fiu"
        and scores.dtype.kind in "fiu"
        and boxes.shape == (len(dets), 4)
        and scores.shape == (len(dets),)
        and bool(np.isfinite(boxes).all() and np.isfinite(scores).all())
        and bool((boxes[:, 2:] >= 0).all())
        and set(det_images) <= image_ids
        and set(det_cats) <= cat_ids
    )
    if not ok:
        _raise_first_bad_detection(dets, image_ids, cat_ids)
    boxes_list = boxes.astype(np.float64).tolist()
    scores_list = scores.astype(np.float64).tolist()
    return [
        {"image_id": i, "category_id": c, "bbox": b, "score": sc}
        for i, c, b, sc in zip(det_images, det_cats, boxes_list, scores_list)
    ]


def _raise_first_bad_detection(dets: Sequence[Any], image_ids: set[Any], cat_ids: set[Any]) -> None:
    """Check detections one by one and raise :class:`DatasetError` naming the problem."""
    bad_images: list[Any] = []
    bad_cats: list[Any] = []
    for n, det in enumerate(dets):
        if not isinstance(det, Mapping):
            raise DatasetError(f"detection #{n} is not an object")
        missing = [k for k in _DET_KEYS if k not in det]
        if missing:
            raise DatasetError(f"detection #{n} is missing {', '.join(map(repr, missing))}")
        if det["image_id"] not in image_ids:
            bad_images.append(det["image_id"])
            continue
        if det["category_id"] not in cat_ids:
            bad_cats.append(det["category_id"])
            continue
        if not _is_finite_number(det["score"]):
            raise DatasetError(f"detection #{n} has a non-numeric or non-finite score {det['score']!r}")
        _check_box(det["bbox"], f"detection #{n}")
    if bad_images:
        first = sorted({str(i) for i in bad_images})[:5]
        raise DatasetError(
            f"{len(bad_images)} detection(s) refer to image ids not in the ground truth "
            f"(first: {', '.join(first)})"
        )
    if bad_cats:
        first = sorted({str(i) for i in bad_cats})[:5]
        raise DatasetError(
            f"{len(bad_cats)} detection(s) have category ids not in the ground truth "
            f"(first: {', '.join(first)}; known: {', '.join(map(str, sorted(cat_ids)))})"
        )
    raise DatasetError("the detections are not valid COCO results")


def _check_box(box: Any, what: str) -> list[float]:
    """A finite ``[x, y, w, h]`` with w, h >= 0, as floats."""
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(map(_is_finite_number, box)):
        raise DatasetError(f"{what} has a bad bbox {box!r}: expected [x, y, w, h], 4 finite numbers")
    x, y, w, h = (float(v) for v in box)
    if w < 0 or h < 0:
        raise DatasetError(f"{what} has a negative box width or height: {box!r}")
    return [x, y, w, h]


def _is_finite_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
