"""The detection dataset over a COCO file + images folder, and its builder.

An item is ``(image, target)``: ``image`` Tensor[C, H, W] float32 in 0..255 after the
transforms; ``target`` = ``{"boxes": Tensor[M, 4] float32 xyxy pixels of the transformed
image, "labels": Tensor[M] int64 0-based, "image_id": int (COCO id), "orig_size":
(H0, W0), "scale": float (transformed / original)}``. Label i is category ``cat_ids[i]``.

Images are used at native resolution: training takes random crops of the model's input
size, evaluation the whole image (see :mod:`fsanet_geo.data.transforms`); ``resize_to``
resizes on request, with one :class:`ResizeWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from fsanet_geo.data.aitod import find_aitod_split, validate_aitod_categories
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.coco import CocoSet, DatasetStats, ImageRecord, load_coco
from fsanet_geo.data.transforms import DetectionTransform
from fsanet_geo.errors import ConfigError, DatasetError

Target = dict[str, Any]


class ResizeWarning(UserWarning):
    """Images are resized (``resize_to``): the model sees objects at another size than in ``detect``."""

_TIFF_SUFFIXES = (".tif", ".tiff")


class DetectionDataset(Dataset[tuple[torch.Tensor, Target]]):
    """A COCO detection set as a torch Dataset.

    With ``train=True`` images without usable boxes are skipped and crowd/ignore boxes are
    never targets; with ``train=False`` every image is kept (evaluation scores them all).
    Attributes: ``class_names`` (label order), ``cat_ids`` (label -> category id),
    ``coco`` (the ground-truth JSON as read, for evaluation), ``stats``.
    ``check_categories(categories, ann_path)`` may reject the label set before use.
    """

    def __init__(
        self,
        ann_path: str | Path,
        images_dir: str | Path,
        *,
        train: bool,
        transform: DetectionTransform | None = None,
        class_names: Sequence[str] | None = None,
        check_categories: Callable[[list[dict[str, Any]], Path], None] | None = None,
    ) -> None:
        coco_set: CocoSet = load_coco(ann_path, images_dir)
        if check_categories is not None:
            check_categories(coco_set.categories, Path(ann_path))
        self.ann_path = Path(ann_path)
        self.images_dir = Path(images_dir)
        self.train = train
        self.transform = transform or DetectionTransform.eval()
        self.coco: dict[str, Any] = coco_set.coco
        self.cat_ids: list[int] = [int(c["id"]) for c in coco_set.categories]
        names = class_names if class_names else [str(c["name"]) for c in coco_set.categories]
        self.class_names: list[str] = list(names)
        if len(self.class_names) != len(self.cat_ids):
            raise DatasetError(
                f"{ann_path}: {len(self.cat_ids)} categories but {len(self.class_names)} class names given"
            )
        self.stats: DatasetStats = coco_set.stats
        label_of = {cid: i for i, cid in enumerate(self.cat_ids)}
        records = coco_set.records
        if train:
            records = [r for r in records if len(r.boxes) > 0]
            self.stats.skipped_images = len(coco_set.records) - len(records)
            if not records:
                raise DatasetError(f"{ann_path}: no image has a usable box, nothing to train on")
        self.records: list[ImageRecord] = records
        self._labels = [np.array([label_of[int(c)] for c in r.category_ids], dtype=np.int64) for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        rec = self.records[index]
        image = read_image(rec.path)
        if tuple(image.shape[1:]) != (rec.height, rec.width):
            raise DatasetError(
                f"{rec.path} is {image.shape[1]} x {image.shape[2]} px but {self.ann_path} says "
                f"{rec.height} x {rec.width}"
            )
        boxes = torch.from_numpy(rec.boxes.copy())
        image, boxes, keep, scale = self.transform(image, boxes)
        target: Target = {
            "boxes": boxes.float(),
            "labels": torch.from_numpy(self._labels[index].copy())[keep],
            "image_id": rec.image_id,
            "orig_size": (rec.height, rec.width),
            "scale": float(scale),
        }
        return image, target


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image as Tensor[C, H, W] float32 in 0..255 (grayscale -> 3 bands, alpha dropped).

    PNG/JPEG through Pillow; TIFFs through rasterio, keeping every band except an alpha
    band. Only 8-bit images are accepted: scale others first.
    """
    path = Path(path)
    if path.suffix.lower() in _TIFF_SUFFIXES:
        array = _read_tiff(path)
    else:
        array = _read_pil(path)
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if img.mode in ("L", "RGB"):
                array = np.asarray(img)
            elif img.mode in ("RGBA", "P", "PA", "LA", "CMYK", "YCbCr", "1"):
                array = np.asarray(img.convert("RGB"))
            else:
                raise DatasetError(f"{path}: image mode {img.mode!r} is not 8-bit; convert it to 8-bit RGB first")
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_tiff(path: Path) -> np.ndarray:
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain image tiles are fine
            with rasterio.open(path) as src:
                if src.dtypes[0] != "uint8":
                    raise DatasetError(f"{path}: data type {src.dtypes[0]} is not 8-bit; scale it to uint8 first")
                array = src.read()
                alpha = src.count > 1 and src.colorinterp[-1] == ColorInterp.alpha
    except RasterioIOError as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    return array[:-1] if alpha else array


def collate(batch: Sequence[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Keep images of different sizes apart: ``(list of Tensor[C, H, W], list of targets)``."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets


def build_dataset(
    kind: Literal["aitod", "coco"],
    *,
    data_root: str | Path | None = None,
    split: str = "trainval",
    ann: str | Path | None = None,
    images: str | Path | None = None,
    train: bool,
    input_size: int = 800,
    resize_to: int | None = None,
    flip_h: float = 0.5,
    flip_v: float = 0.0,
    rot90: bool = False,
) -> DetectionDataset:
    """Build the dataset for training (``train=True``: random ``input_size`` crops at native
    scale and random flips) or evaluation (each image whole, at native size).

    ``resize_to`` (pixels) first scales every image so that its longer side is that long,
    and warns once (:class:`ResizeWarning`): objects then reach the model at another size
    than ``fsanet detect`` shows them.

    ``kind="aitod"``: either ``data_root`` (+ ``split``), found in any known layout, or
    ``ann`` + ``images``; the categories must be AI-TOD's 8 classes. ``kind="coco"``:
    ``ann`` + ``images``; class names come from its categories (sorted by id).
    """
    if input_size < 32:
        raise ConfigError(f"input size must be >= 32 px, got {input_size}")
    if resize_to is not None:
        if resize_to < 32:
            raise ConfigError(f"--resize-to must be >= 32 px, got {resize_to}")
        warnings.warn(
            f"images are resized so that their longer side is {resize_to} px (--resize-to): objects "
            "reach the model at another size than fsanet detect shows them", ResizeWarning, stacklevel=2)
    for name, p in (("flip_h", flip_h), ("flip_v", flip_v)):
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{name} must be a probability in [0, 1], got {p}")
    if train:
        transform = DetectionTransform(crop_size=input_size, resize_to=resize_to, flip_h=flip_h,
                                       flip_v=flip_v, rot90=rot90)
    else:
        transform = DetectionTransform.eval(resize_to)
    if kind == "aitod":
        if ann is not None or images is not None:
            if ann is None or images is None:
                given, missing = ("annotation file", "images folder") if ann is not None else (
                    "images folder", "annotation file")
                raise ConfigError(f"an {given} was given without its {missing}: give both (or only a data root)")
            ann_path, images_dir = Path(ann), Path(images)
        elif data_root is not None:
            ann_path, images_dir = find_aitod_split(data_root, split)
        else:
            raise ConfigError("AI-TOD needs a data root, or an annotation file and an images folder")
        return DetectionDataset(ann_path, images_dir, train=train, transform=transform,
                                class_names=list(AITOD_CLASSES), check_categories=validate_aitod_categories)
    if kind == "coco":
        if ann is None or images is None:
            raise ConfigError("a COCO dataset needs an annotation file and an images folder")
        return DetectionDataset(ann, images, train=train, transform=transform)
    raise ConfigError(f"unknown dataset kind {kind!r}; choose 'aitod' or 'coco'")
