"""The training chips (and validation blocks) of labelled scenes as a COCO set, for other tools.

Chips are drawn exactly as :class:`~fsanet_geo.geodata.chips.SceneChipDataset` draws them
(same sampler, reader, stretch and edge rule; no flips), from a private generator seeded
with ``seed``, so one seed gives the same chips. Layout of ``out``::

    train/images/chip_000001.png ...   train/annotations.json
    val/images/block_000001.png ...    val/annotations.json    (when the split has blocks)
    export.json                        settings, and per scene its stretch

COCO images also carry ``fsanet_scene`` (the scene) and ``fsanet_window`` ([col, row,
width, height] scene pixels); GeoTIFF chips are georeferenced. The folder is written beside
``out`` and renamed onto it at the end (a non-empty ``out`` only with ``overwrite``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from affine import Affine

from fsanet_geo.data.coco import LabelledImage, coco_ground_truth
from fsanet_geo.data.transforms import MIN_VISIBLE
from fsanet_geo.errors import ConfigError, DatasetError, FileOverwriteError, OutputError
from fsanet_geo.geodata.chips import SceneChipDataset
from fsanet_geo.geodata.spatial_split import Window
from fsanet_geo.geodata.types import LabelSet, SceneSplit
from fsanet_geo.geodata.val_blocks import ValBlockDataset
from fsanet_geo.io_utils import check_replaceable_dir, replace_dir

ImageFormat = Literal["png", "tif"]

_OURS = frozenset({"train", "val", "export.json"})
"""What an export writes in ``out``: ``--overwrite`` replaces a folder holding only these."""


@dataclass(frozen=True)
class ChipExport:
    """What :func:`export_chips` wrote: the folder, and images and boxes per split."""

    out: Path
    train_images: int
    train_boxes: int
    val_images: int
    val_boxes: int
    class_names: tuple[str, ...]


def export_chips(
    label_set: LabelSet,
    splits: Sequence[SceneSplit],
    out: str | os.PathLike[str],
    *,
    chip_size: int,
    chips: int | None = None,
    seed: int = 0,
    image_format: ImageFormat = "png",
    object_share: float = 0.5,
    min_visible: float = MIN_VISIBLE,
    levels: Sequence[Sequence[float]] | None = None,
    percentiles: Sequence[float] = (2.0, 98.0),
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ChipExport:
    """Write ``chips`` training chips (default: the dataset's chips per epoch) and the validation
    blocks of ``splits`` under ``out`` (see the module docstring); ``progress(done, total)``.

    Raises:
        FileOverwriteError: ``out`` is not empty and ``overwrite`` is false, or holds other files
            than an export's.
        ConfigError: bad settings, or PNG asked for with other than 1 or 3 bands.
        DatasetError: the labels hold no object (a set of background chips only).
    """
    target = Path(out)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not overwrite)):
        if not target.is_dir():
            raise OutputError(f"{target} exists and is not a folder")
        raise FileOverwriteError(f"{target} exists and is not empty (use --overwrite to replace it)")
    check_replaceable_dir(target, _OURS, what="an export")  # never a folder of other files
    if image_format not in ("png", "tif"):
        raise ConfigError(f"chip format must be 'png' or 'tif', got {image_format!r}")
    if label_set.num_objects == 0:
        raise DatasetError("the labels hold no object inside their scenes: nothing to export "
                           "(fsanet data check --scene ... --labels ... shows why)")
    bands = {len(s.info.bands) for s in label_set.scenes}
    if image_format == "png" and not bands <= {1, 3}:
        raise ConfigError(f"PNG holds 1 or 3 bands, the scenes have {sorted(bands)}: use the tif format")
    dataset = SceneChipDataset(label_set, splits, chip_size=chip_size, object_share=object_share,
                               chips_per_epoch=chips, min_visible=min_visible, flip_h=0.0,
                               levels=levels, percentiles=percentiles)
    has_val = any(s.val_windows for s in splits)
    blocks = ValBlockDataset(label_set, splits, pixels=dataset.pixels) if has_val else None
    total = len(dataset) + (len(blocks) if blocks is not None else 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the data set is an ordinary folder
    try:
        writer = _Writer(label_set, image_format, total, progress)
        rng = np.random.default_rng(seed)
        train = []
        for image_id in range(1, len(dataset) + 1):
            scene_index, window = dataset.sampler.draw(rng)
            image, boxes, labels = dataset.chip(scene_index, window)
            train.append(writer.write(tmp / "train", f"chip_{image_id:06d}", image_id, scene_index, window,
                                      image, boxes.double().numpy(), labels.numpy()))
        writer.annotations(tmp / "train", train)
        val = []
        if blocks is not None:
            for index in range(len(blocks)):
                image_id = index + 1
                scene_index, window = blocks.blocks[image_id]
                image, target_dict = blocks[index]  # float copies of 8-bit values: exact back to uint8
                val.append(writer.write(tmp / "val", f"block_{image_id:06d}", image_id, scene_index, window,
                                        image.to(torch.uint8).numpy(),
                                        target_dict["boxes"].double().numpy(), target_dict["labels"].numpy()))
            writer.annotations(tmp / "val", val)
        settings = {"chip_size": chip_size, "chips": len(dataset), "seed": seed, "object_share": object_share,
                    "min_visible": min_visible, "format": image_format, "class_names": list(label_set.class_names),
                    "scenes": [{"scene": str(s.source.scene), "labels": s.source.labels,
                                "stretch": None if st is None else st.to_dict()}
                               for s, st in zip(label_set.scenes, dataset.pixels.stretches)]}
        (tmp / "export.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        replace_dir(tmp, target, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        dataset.pixels.close()
    return ChipExport(target, len(train), sum(len(r[0].boxes) for r in train), len(val),
                      sum(len(r[0].boxes) for r in val), tuple(label_set.class_names))


class _Writer:
    """Writes chip images (PNG or georeferenced GeoTIFF) and a split's COCO file."""

    def __init__(self, label_set: LabelSet, image_format: ImageFormat, total: int,
                 progress: Callable[[int, int], None] | None) -> None:
        self.label_set, self.format, self.total, self.progress, self.done = label_set, image_format, total, progress, 0

    def write(self, split_dir: Path, stem: str, image_id: int, scene_index: int, window: Window,
              image: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> tuple[LabelledImage, dict[str, Any]]:
        """Write ``image`` (uint8 [C, h, w]) as ``split_dir/images/stem.<format>``; its COCO record."""
        folder = split_dir / "images"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{stem}.{self.format}"
        info = self.label_set.scenes[scene_index].info
        if self.format == "png":
            from PIL import Image

            pixels = image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))
            Image.fromarray(pixels).save(folder / name, format="PNG")
        else:
            from fsanet_geo.geo.outputs.raster_io import write_geotiff

            transform = info.transform @ Affine.translation(window[0], window[1])
            write_geotiff(folder / name, image.transpose(1, 2, 0), transform, info.crs, overviews=())
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        extra = {"fsanet_scene": str(self.label_set.scenes[scene_index].source.scene),
                 "fsanet_window": [int(v) for v in window]}
        return LabelledImage(image_id, name, image.shape[2], image.shape[1], boxes, labels), extra

    def annotations(self, split_dir: Path, records: list[tuple[LabelledImage, dict[str, Any]]]) -> None:
        coco = coco_ground_truth((r[0] for r in records), class_names=self.label_set.class_names,
                                 description="fsanet export-chips")
        for entry, (_, extra) in zip(coco["images"], records):
            entry.update(extra)
        (split_dir / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
