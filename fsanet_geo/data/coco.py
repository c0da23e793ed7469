"""Loading and checking a COCO-format detection set (AI-TOD or any other).

Decisions, applied by :func:`load_coco`:

- a JSON that is not COCO (no ``images``/``annotations``/``categories`` lists, images
  without id/file_name/width/height, annotations without a 4-number bbox): DatasetError;
- image files missing from the images folder: DatasetError with the count and the first
  3 names (all files are checked up front, so training never dies at image 10,000);
- annotations naming unknown category ids or unknown image ids: DatasetError naming them;
- boxes partly outside their image: clipped to it and counted (``stats.clipped``); boxes
  entirely outside: dropped and counted (``stats.outside``); both with one warning
  naming the first offenders (training can go on safely);
- boxes narrower or shorter than 1 px (after clipping): dropped and counted
  (``stats.tiny``), as in FSANet's training pipeline;
- ``iscrowd`` or ``ignore`` boxes: never used as training targets (``stats.crowd``);
- images left without boxes: listed (``stats.empty_images``); the training dataset skips
  them, the evaluation dataset keeps them.

Boxes are kept as xyxy pixel edges (COCO's [x, y, w, h] -> [x, y, x + w, y + h]).

:func:`coco_ground_truth` goes the other way: it builds the COCO dict of labelled images
(the synthetic writers use it), category id = 0-based label + 1.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import DatasetError

MAX_NAMED = 3
"""How many offenders an error or warning names."""


class DatasetWarning(UserWarning):
    """A data problem that was repaired (boxes clipped or dropped); training goes on."""


@dataclass
class DatasetStats:
    """Counts of what loading kept, repaired and dropped (annotations, not images, unless named so)."""

    images: int = 0
    annotations: int = 0
    kept: int = 0
    clipped: int = 0
    outside: int = 0
    tiny: int = 0
    crowd: int = 0
    empty_images: int = 0
    skipped_images: int = 0  # images the training dataset leaves out (no boxes)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class ImageRecord:
    """One image and its usable boxes: boxes float32 [M, 4] xyxy pixels, category_ids int64 [M]."""

    image_id: int
    file_name: str
    path: Path
    height: int
    width: int
    boxes: np.ndarray
    category_ids: np.ndarray


@dataclass
class CocoSet:
    """A checked COCO set: the raw JSON (for evaluation), its records and categories."""

    coco: dict[str, Any]
    records: list[ImageRecord]
    categories: list[dict[str, Any]]  # sorted by id
    stats: DatasetStats = field(default_factory=DatasetStats)


def read_coco_json(ann_path: str | Path) -> dict[str, Any]:
    """Read a COCO JSON file and check its top-level structure."""
    path = Path(ann_path)
    if not path.is_file():
        raise DatasetError(f"annotation file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not COCO: the top level is a {type(data).__name__}, not an object")
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data.get(k), list)]
    if missing:
        raise DatasetError(f"{path} is not COCO: missing list(s) {', '.join(repr(k) for k in missing)}")
    return data


def load_coco(ann_path: str | Path, images_dir: str | Path) -> CocoSet:
    """Read, check and index a COCO detection set; see the module docstring for the rules."""
    path = Path(ann_path)
    images_root = Path(images_dir)
    data = read_coco_json(path)
    if not images_root.is_dir():
        raise DatasetError(f"images folder {images_root} does not exist")
    categories = _check_categories(data["categories"], path)
    images = _check_images(data["images"], path, images_root)
    known_cats = {c["id"] for c in categories}
    stats = DatasetStats(images=len(images), annotations=len(data["annotations"]))

    per_image: dict[int, list[tuple[list[float], int]]] = {i: [] for i in images}
    bad_cats: dict[int, None] = {}
    bad_images: dict[Any, None] = {}
    clipped_names: list[str] = []
    outside_names: list[str] = []
    for ann in data["annotations"]:
        box, image_id, cat = _ann_fields(ann, path)
        if cat not in known_cats:
            bad_cats[cat] = None
            continue
        if image_id not in images:
            bad_images[image_id] = None
            continue
        if ann.get("iscrowd", 0) or ann.get("ignore", 0):
            stats.crowd += 1
            continue
        _, _, height, width = images[image_id]
        x, y, w, h = box
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
        if x2 <= x1 or y2 <= y1:
            if w > 0 and h > 0:
                stats.outside += 1
                outside_names.append(_ann_name(ann, images[image_id][0], box))
            else:
                stats.tiny += 1
            continue
        if (x1, y1, x2, y2) != (x, y, x + w, y + h):
            stats.clipped += 1
            if max(-x, -y, x + w - width, y + h - height) > 1.0:
                clipped_names.append(_ann_name(ann, images[image_id][0], box))
        if x2 - x1 < 1.0 or y2 - y1 < 1.0:
            stats.tiny += 1
            continue
        per_image[image_id].append(([x1, y1, x2, y2], cat))
        stats.kept += 1

    if bad_cats:
        ids = sorted(bad_cats, key=str)
        raise DatasetError(
            f"{path}: annotations use unknown category id(s) {_first(ids)} "
            f"(categories are {sorted(known_cats)})"
        )
    if bad_images:
        raise DatasetError(f"{path}: annotations refer to unknown image id(s) {_first(sorted(bad_images, key=str))}")
    if outside_names or clipped_names:
        parts = []
        if outside_names:
            parts.append(f"dropped {len(outside_names)} box(es) entirely outside their image: {_first(outside_names)}")
        if clipped_names:
            parts.append(f"clipped {len(clipped_names)} box(es) reaching more than 1 px outside their image: "
                         f"{_first(clipped_names)}")
        warnings.warn(f"{path}: " + "; ".join(parts), DatasetWarning, stacklevel=2)

    records = []
    for image_id, (file_name, file_path, height, width) in images.items():
        items = per_image[image_id]
        boxes = np.array([b for b, _ in items], dtype=np.float32).reshape(-1, 4)
        cats = np.array([c for _, c in items], dtype=np.int64)
        if len(items) == 0:
            stats.empty_images += 1
        records.append(ImageRecord(image_id, file_name, file_path, height, width, boxes, cats))
    return CocoSet(coco=data, records=records, categories=categories, stats=stats)


def _check_categories(categories: Sequence[Any], path: Path) -> list[dict[str, Any]]:
    if not categories:
        raise DatasetError(f"{path} is not usable: its 'categories' list is empty")
    bad = [c for c in categories if not isinstance(c, Mapping) or not _is_int(c.get("id")) or "name" not in c]
    if bad:
        raise DatasetError(
            f"{path} is not COCO: categories need an integer 'id' and a 'name'; first bad: {_first(bad)}"
        )
    ids = [int(c["id"]) for c in categories]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise DatasetError(f"{path}: duplicate category id(s) {_first(dupes)}")
    return sorted((dict(c) for c in categories), key=lambda c: int(c["id"]))


def _check_images(images: Sequence[Any], path: Path, root: Path) -> dict[int, tuple[str, Path, int, int]]:
    """image id -> (file_name, file path, height, width), after checking every file exists."""
    out: dict[int, tuple[str, Path, int, int]] = {}
    bad = []
    for img in images:
        ok = isinstance(img, Mapping) and _is_int(img.get("id")) and isinstance(img.get("file_name"), str) \
            and _is_int(img.get("width")) and _is_int(img.get("height"))
        if not ok:
            bad.append(img)
            continue
        out[int(img["id"])] = (img["file_name"], root / img["file_name"], int(img["height"]), int(img["width"]))
    if bad:
        raise DatasetError(
            f"{path} is not COCO: images need integer 'id', 'width', 'height' and a 'file_name'; "
            f"{len(bad)} do not, first: {_first(bad)}"
        )
    if len(out) != len(images):
        raise DatasetError(f"{path}: {len(images) - len(out)} duplicate image id(s)")
    missing = [name for name, file_path, _, _ in out.values() if not file_path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} of {len(out)} image file(s) listed in {path} are missing from {root}: {_first(missing)}"
        )
    return out


def _ann_fields(ann: Any, path: Path) -> tuple[tuple[float, float, float, float], Any, Any]:
    bbox = ann.get("bbox") if isinstance(ann, Mapping) else None
    if not (isinstance(bbox, Sequence) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)) \
            or "image_id" not in ann or "category_id" not in ann:
        raise DatasetError(
            f"{path} is not COCO: annotations need 'image_id', 'category_id' and a 4-number 'bbox'; "
            f"first bad: {ann!r:.200}"
        )
    x, y, w, h = (float(v) for v in bbox)
    return (x, y, w, h), ann["image_id"], ann["category_id"]


def _ann_name(ann: Mapping[str, Any], file_name: str, box: tuple[float, float, float, float]) -> str:
    return f"annotation {ann.get('id', '?')} of {file_name} bbox {[round(v, 2) for v in box]}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())


def _first(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) if not isinstance(i, Mapping) else json.dumps(i)[:120] for i in items[:MAX_NAMED])
    return shown + (f" (and {len(items) - MAX_NAMED} more)" if len(items) > MAX_NAMED else "")


@dataclass(frozen=True)
class LabelledImage:
    """One image's ground truth: boxes float [M, 4] xyxy pixel edges, labels int [M] 0-based."""

    image_id: int
    file_name: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray


def coco_ground_truth(
    images: Iterable[LabelledImage], *, class_names: Sequence[str], description: str
) -> dict[str, Any]:
    """COCO ground truth of ``images``: keys info, images, annotations, categories.

    Each box becomes bbox ``[x, y, w, h]`` (pixels, floats) with ``area = w * h``,
    ``iscrowd`` and ``ignore`` 0; annotation ids run from 1 over all images in order;
    category id = label + 1, named by ``class_names`` (categories 1..len(class_names)).
    """
    image_entries: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image in images:
        image_entries.append({"id": int(image.image_id), "file_name": image.file_name,
                              "width": int(image.width), "height": int(image.height)})
        boxes = np.asarray(image.boxes, np.float64).reshape(-1, 4).tolist()
        for (x0, y0, x1, y1), label in zip(boxes, np.asarray(image.labels).reshape(-1).tolist()):
            w, h = x1 - x0, y1 - y0
            annotations.append({
                "id": len(annotations) + 1, "image_id": int(image.image_id), "category_id": int(label) + 1,
                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0, "ignore": 0,
            })
    categories = [{"id": i + 1, "name": name, "supercategory": name} for i, name in enumerate(class_names)]
    return {"info": {"description": description}, "images": image_entries, "annotations": annotations,
            "categories": categories}
