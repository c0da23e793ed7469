"""The validation blocks of a spatial split as an evaluation dataset.

One item per validation window, read whole through the same reader and stretch as the
training chips (:class:`~fsanet_geo.geodata.scene_pixels.ScenePixels`, detect's code path).
It plugs into :func:`fsanet_geo.evaluate.predict.evaluate_model` unchanged: a block larger
than the model's tile is predicted through detect's tiling and seam merge there. Targets are
the scene's boxes whose centre lies in the window (and in the labelled area), clipped to it;
evaluation keeps every such box (none is crowd).

C = bands, h x w = block pixels, M = boxes in a block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fsanet_geo.data.coco import LabelledImage, coco_ground_truth
from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.pixels.remote import location_name
from fsanet_geo.geodata.scene_pixels import ScenePixels
from fsanet_geo.geodata.spatial_split import Window
from fsanet_geo.geodata.types import LabelSet, SceneSplit

Target = dict[str, Any]


def window_boxes(boxes: np.ndarray, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [N, 4] (scene pixels) whose centre lies in ``window`` (half-open), clipped to it and
    moved into window pixels: (boxes [M, 4] float64, keep bool [N])."""
    col, row, width, height = window
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (cx >= col) & (cx < col + width) & (cy >= row) & (cy < row + height)
    moved = boxes[keep] - np.array([col, row, col, row], np.float64)
    clipped = np.minimum(np.maximum(moved, 0.0), np.array([width, height, width, height], np.float64))
    return clipped, keep


class ValBlockDataset(Dataset[tuple[torch.Tensor, Target]]):
    """Validation windows of ``splits`` as ``(image Tensor[C, h, w] float32 0..255, target)`` items
    (``target`` as :class:`fsanet_geo.data.dataset.DetectionDataset` gives it, ``image_id`` 1..n).

    Attributes:
        coco: COCO ground truth (images named ``"<scene file>#<col>_<row>"``, boxes xywh block
            pixels, categories 1..K named ``class_names``).
        cat_ids: label -> category id (``[1..K]``).
        class_names: label order of the label set.
        blocks: image id -> (scene index, window ``(col_off, row_off, width, height)``), to map
            block pixels back to scene pixels (and through the scene's transform to the map).
        pixels: the :class:`ScenePixels` that reads them (its ``stretches`` per scene).
    """

    def __init__(self, label_set: LabelSet, splits: Sequence[SceneSplit], *,
                 levels: Sequence[Sequence[float]] | None = None, percentiles: Sequence[float] = (2.0, 98.0),
                 pixels: ScenePixels | None = None) -> None:
        self.label_set = label_set
        self.class_names: list[str] = list(label_set.class_names)
        self.cat_ids: list[int] = list(range(1, len(self.class_names) + 1))
        self.pixels = pixels or ScenePixels(label_set, levels=levels, percentiles=percentiles)
        self.blocks: dict[int, tuple[int, Window]] = {}
        self._targets: list[tuple[np.ndarray, np.ndarray]] = []
        images = []
        for split in splits:
            scene = label_set.scenes[split.scene_index]
            inside = self.pixels.inside[split.scene_index]
            boxes = np.asarray(scene.boxes, np.float64).reshape(-1, 4)[inside]
            labels = np.asarray(scene.labels, np.int64).reshape(-1)[inside]
            for window in split.val_windows:
                image_id = len(self.blocks) + 1
                self.blocks[image_id] = (split.scene_index, tuple(int(v) for v in window))  # type: ignore[misc]
                clipped, keep = window_boxes(boxes, window)
                self._targets.append((clipped, labels[keep]))
                name = f"{location_name(scene.info.path)}#{window[0]}_{window[1]}"
                images.append(LabelledImage(image_id, name, int(window[2]), int(window[3]), clipped, labels[keep]))
        if not self.blocks:
            raise ConfigError("the split has no validation block")
        self.coco: dict[str, Any] = coco_ground_truth(images, class_names=self.class_names,
                                                      description="fsanet validation blocks")

    def __len__(self) -> int:
        return len(self.blocks)

    def to_scene(self, image_id: int, boxes: np.ndarray) -> tuple[int, np.ndarray]:
        """(scene index, boxes [N, 4] xyxy scene pixels) of ``boxes`` [N, 4] xyxy in block ``image_id``'s
        pixels; the scene's ``info.transform`` takes them on to map coordinates."""
        scene_index, (col, row, _, _) = self.blocks[image_id]
        shift = np.array([col, row, col, row], np.float64)
        return scene_index, np.asarray(boxes, np.float64).reshape(-1, 4) + shift

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        image_id = index + 1
        if image_id not in self.blocks:
            raise IndexError(f"block {index} out of range 0..{len(self) - 1}")
        scene_index, window = self.blocks[image_id]
        image = torch.from_numpy(self.pixels.read(scene_index, window)).float()
        boxes, labels = self._targets[index]
        target: Target = {"boxes": torch.from_numpy(boxes).float(), "labels": torch.from_numpy(labels.copy()),
                          "image_id": image_id, "orig_size": (int(window[3]), int(window[2])), "scale": 1.0}
        return image, target
