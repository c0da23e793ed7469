"""Training chips cut on the fly from labelled scenes, with ``fsanet detect``'s pixels.

A chip is ``chip_size`` px square at native resolution (the whole axis where the scene is
smaller, as detect's ``min(tile, side)``), placed by :func:`~fsanet_geo.geodata.spatial_split.chip_window`
around a centre pixel that lies in the scene's ``train_area`` (so it never meets a
validation block). A share ``object_share`` of chips is centred on a training object
(chosen uniformly among the objects whose centre pixel lies in the training area), the
centre jittered uniformly so that the object stays inside the chip when it fits; the rest
is uniform over the training area of all scenes (scenes weighted by that area).

Pixels come from :class:`~fsanet_geo.geodata.scene_pixels.ScenePixels` (detect's reader and
stretch; zero on nodata, outside the raster and outside the labelled area); only boxes whose
centre lies in the labelled area are targets. Boxes cut by the chip edge follow the crop
rule of :func:`fsanet_geo.data.transforms.clip_to_window` (``min_visible``), then the item
gets :class:`~fsanet_geo.data.transforms.DetectionTransform`'s flips and quarter turns.

Randomness: every draw of ``__getitem__`` comes from numpy's and torch's GLOBAL generators,
so that :class:`fsanet_geo.train.sampler.SeededItems` makes item i of an epoch a pure
function of ``(seed, epoch, i)``. Use it through ``SeededItems`` (or seed numpy in each
worker): DataLoader workers reseed torch but not numpy, so unseeded forked workers would
draw the same chips. ``chips_per_epoch`` default:
``max(1, ceil(train area px / chip_size**2), ceil(training objects / 4))``.

C = bands, S = chip side (px), M = boxes in a chip.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import shapely
import torch
from torch.utils.data import Dataset

from fsanet_geo.data.transforms import MIN_VISIBLE, DetectionTransform, clip_to_window
from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.geodata.scene_pixels import ScenePixels
from fsanet_geo.geodata.spatial_split import Window, chip_side, chip_window
from fsanet_geo.geodata.types import LabelSet, SceneSplit

Target = dict[str, Any]
_TRIES = 64
"""Draws of a uniform point before a training area counts as having no usable pixel."""


class _TrainArea:
    """Uniform pixel draws inside one scene's training area (triangulated once)."""

    def __init__(self, scene_index: int, geometry: Any) -> None:
        self.scene_index = scene_index
        self.geometry = geometry
        shapely.prepare(geometry)
        triangles = shapely.get_parts(shapely.constrained_delaunay_triangles(geometry))
        self.corners = np.array([np.asarray(t.exterior.coords)[:3] for t in triangles], np.float64)
        self.cum_area = np.cumsum(shapely.area(triangles))
        self.area = float(geometry.area)

    def has_pixel(self, max_pixels: int = 4_000_000) -> bool:
        """Whether some pixel centre lies in the area (counted when its bounds hold at most
        ``max_pixels`` pixels; a larger area is taken to hold one)."""
        x1, y1, x2, y2 = self.geometry.bounds
        c0, r0, c1, r1 = math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)
        if (c1 - c0) * (r1 - r0) > max_pixels:
            return True
        rows, cols = np.mgrid[r0:r1, c0:c1]
        return bool(np.any(self.contains_pixel(cols, rows)))

    def contains_pixel(self, col: np.ndarray | int, row: np.ndarray | int) -> Any:
        """Whether the centre of pixel (``col``, ``row``) lies in the area."""
        return shapely.contains_xy(self.geometry, np.asarray(col) + 0.5, np.asarray(row) + 0.5)

    def draw(self, rng: Any) -> tuple[int, int]:
        """A uniform pixel (col, row) whose centre lies in the area."""
        for _ in range(_TRIES):
            k = min(int(np.searchsorted(self.cum_area, rng.random() * self.cum_area[-1], side="right")),
                    len(self.corners) - 1)
            u, v = rng.random(), rng.random()
            if u + v > 1.0:
                u, v = 1.0 - u, 1.0 - v
            a, b, c = self.corners[k]
            x, y = a + u * (b - a) + v * (c - a)
            col, row = math.floor(x), math.floor(y)
            if self.contains_pixel(col, row):
                return col, row
        raise DatasetError(f"the training area of scene {self.scene_index} holds no whole pixel centre")


class ChipSampler:
    """Where chips lie: :meth:`draw` gives (scene index, window) from any generator with ``random()``."""

    def __init__(self, label_set: LabelSet, splits: Sequence[SceneSplit], pixels: ScenePixels, *,
                 chip_size: int, object_share: float) -> None:
        if chip_size < 1:
            raise ConfigError(f"chip size must be >= 1 px, got {chip_size}")
        if not 0.0 <= object_share <= 1.0:
            raise ConfigError(f"object share must be in [0, 1], got {object_share}")
        self.label_set, self.chip_size, self.object_share = label_set, chip_size, object_share
        areas = [_TrainArea(s.scene_index, s.train_area) for s in splits if s.train_area is not None]
        self.areas = [a for a in areas if a.has_pixel()]  # slivers between blocks hold no pixel centre
        if not self.areas:
            raise ConfigError("no scene has a training area" if not areas else
                              "the training area holds no whole pixel: use a smaller --val-block or --val-fraction")
        self.cum_area = np.cumsum([a.area for a in self.areas])
        areas, indexes = [], []
        for k, area in enumerate(self.areas):
            boxes = np.asarray(label_set.scenes[area.scene_index].boxes, np.float64).reshape(-1, 4)
            col = np.floor((boxes[:, 0] + boxes[:, 2]) / 2).astype(np.int64)
            row = np.floor((boxes[:, 1] + boxes[:, 3]) / 2).astype(np.int64)
            usable = np.flatnonzero(pixels.inside[area.scene_index] & area.contains_pixel(col, row))
            areas.append(np.full(len(usable), k, np.int64))
            indexes.append(usable.astype(np.int64))
        self.objects: np.ndarray = np.stack([np.concatenate(areas), np.concatenate(indexes)], axis=1)
        """int64 [O, 2]: (training area index, box index in its scene) of the objects chips centre on."""

    @property
    def train_area_px(self) -> float:
        return float(self.cum_area[-1])

    def draw(self, rng: Any) -> tuple[int, Window]:
        """(scene index, chip window): object-centred with probability ``object_share``, else uniform."""
        if len(self.objects) and rng.random() < self.object_share:
            k, box_index = self.objects[min(int(rng.random() * len(self.objects)), len(self.objects) - 1)].tolist()
            area = self.areas[k]
            col, row = self._jittered(area, box_index, rng)
        else:
            k = min(int(np.searchsorted(self.cum_area, rng.random() * self.cum_area[-1], side="right")),
                    len(self.areas) - 1)
            area = self.areas[k]
            col, row = area.draw(rng)
        info = self.label_set.scenes[area.scene_index].info
        return area.scene_index, chip_window(col, row, self.chip_size, info.width, info.height)

    def _jittered(self, area: _TrainArea, box_index: int, rng: Any) -> tuple[int, int]:
        """A centre pixel near the object: shifted so that the object stays inside the chip when it
        fits (up to a few tries inside the training area), else the object's own centre pixel."""
        info = self.label_set.scenes[area.scene_index].info
        x1, y1, x2, y2 = (float(v) for v in self.label_set.scenes[area.scene_index].boxes[box_index])
        cw, ch = chip_side(self.chip_size, info.width, info.height)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        reach_x, reach_y = max(0.0, (cw - (x2 - x1)) / 2 - 1), max(0.0, (ch - (y2 - y1)) / 2 - 1)
        for _ in range(4):
            col = math.floor(cx + (2 * rng.random() - 1) * reach_x)
            row = math.floor(cy + (2 * rng.random() - 1) * reach_y)
            if area.contains_pixel(col, row):
                return col, row
        return math.floor(cx), math.floor(cy)


class SceneChipDataset(Dataset[tuple[torch.Tensor, Target]]):
    """Training chips of ``label_set`` within ``splits``' training areas, as a torch Dataset.

    Items match :class:`fsanet_geo.data.dataset.DetectionDataset`: ``(image Tensor[C, S, S]
    float32 0..255, {"boxes": Tensor[M, 4] float32 xyxy chip pixels, "labels": Tensor[M] int64,
    "image_id": int (the index), "orig_size": (S, S), "scale": 1.0})``. See the module docstring.

    Args:
        levels: the model's 8-bit levels ([C] low, [C] high) non-uint8 scenes are stretched to
            (None: 0 and 255), as detect's ``--stretch-to model``.
        percentiles: the scene percentiles stretched to those levels.
        pixels: a :class:`ScenePixels` to share (e.g. with a :class:`ValBlockDataset`), so that each
            scene's stretch is measured once; ``levels`` and ``percentiles`` are then its own.
    """

    def __init__(self, label_set: LabelSet, splits: Sequence[SceneSplit], *, chip_size: int,
                 object_share: float = 0.5, chips_per_epoch: int | None = None, min_visible: float = MIN_VISIBLE,
                 flip_h: float = 0.5, flip_v: float = 0.0, rot90: bool = False,
                 levels: Sequence[Sequence[float]] | None = None,
                 percentiles: Sequence[float] = (2.0, 98.0), pixels: ScenePixels | None = None) -> None:
        for name, p in (("flip_h", flip_h), ("flip_v", flip_v), ("min_visible", min_visible)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {p}")
        self.label_set = label_set
        self.class_names: list[str] = list(label_set.class_names)
        self.cat_ids: list[int] = list(range(1, len(self.class_names) + 1))
        self.chip_size, self.min_visible = chip_size, min_visible
        self.pixels = pixels or ScenePixels(label_set, levels=levels, percentiles=percentiles)
        self.sampler = ChipSampler(label_set, splits, self.pixels, chip_size=chip_size, object_share=object_share)
        # Splits without a chip margin: chips may overlap a validation block; its pixels are
        # blanked and its boxes dropped, so no validation pixel or label reaches training.
        self.blanked: dict[int, list[Window]] = {s.scene_index: list(s.val_windows) for s in splits
                                                 if not s.margin and s.val_windows}
        self.transform = DetectionTransform(flip_h=flip_h, flip_v=flip_v, rot90=rot90)
        if chips_per_epoch is None:
            chips_per_epoch = max(1, math.ceil(self.sampler.train_area_px / chip_size**2),
                                  math.ceil(len(self.sampler.objects) / 4))
        if chips_per_epoch < 1:
            raise ConfigError(f"chips per epoch must be >= 1, got {chips_per_epoch}")
        self.chips_per_epoch = int(chips_per_epoch)
        self._boxes = [np.asarray(s.boxes, np.float64).reshape(-1, 4)[keep]
                       for s, keep in zip(label_set.scenes, self.pixels.inside)]
        self._labels = [np.asarray(s.labels, np.int64).reshape(-1)[keep]
                        for s, keep in zip(label_set.scenes, self.pixels.inside)]

    def __len__(self) -> int:
        return self.chips_per_epoch

    def chip(self, scene_index: int, window: Window) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """The chip at ``window``: (uint8 [C, h, w], boxes Tensor[M, 4] float32 chip pixels, labels [M] int64)."""
        image = self.pixels.read(scene_index, window)
        col, row, width, height = window
        boxes = self._boxes[scene_index]
        near = (boxes[:, 2] > col) & (boxes[:, 0] < col + width) & (boxes[:, 3] > row) & (boxes[:, 1] < row + height)
        blanked = self.blanked.get(scene_index)
        if blanked:
            near &= ~_centred_in(boxes, blanked)
            image = _blank(image, window, blanked)
        kept, keep = clip_to_window(torch.from_numpy(boxes[near]), col, row, width, height,
                                    min_visible=self.min_visible)
        labels = torch.from_numpy(self._labels[scene_index][near])[keep]
        return image, kept.float(), labels

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Target]:
        if not 0 <= index < len(self):
            raise IndexError(f"chip {index} out of range 0..{len(self) - 1}")
        scene_index, window = self.sampler.draw(np.random)
        image8, boxes, labels = self.chip(scene_index, window)
        out = self.transform(torch.from_numpy(image8), boxes)  # flipped as uint8: a quarter of the bytes
        target: Target = {"boxes": out.boxes.float(), "labels": labels, "image_id": int(index),
                          "orig_size": (int(window[3]), int(window[2])), "scale": 1.0}
        return out.image.float(), target

    def level_images(self, count: int, seed: int = 0) -> Iterator[np.ndarray]:
        """``count`` chips as the model sees them (uint8 [C, h, w], no flips), drawn from a private
        generator seeded with ``seed`` (the global ones are left alone): for the training levels."""
        rng = np.random.default_rng(seed)
        for _ in range(count):
            scene_index, window = self.sampler.draw(rng)
            yield self.pixels.read(scene_index, window)

    def describe(self) -> dict[str, Any]:
        """Chips per epoch, training area (px), objects chips can be centred on, chip size, object share."""
        return {"chips_per_epoch": self.chips_per_epoch, "train_area_px": self.sampler.train_area_px,
                "objects_available": len(self.sampler.objects), "chip_size": self.chip_size,
                "object_share": self.sampler.object_share,
                "scenes": len(self.sampler.areas)}


def _centred_in(boxes: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """bool [N]: whether each box's centre lies in one of ``windows`` (half-open), as a
    validation block claims its boxes."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = np.zeros(len(boxes), bool)
    for c, r, w, h in windows:
        inside |= (cx >= c) & (cx < c + w) & (cy >= r) & (cy < r + h)
    return inside


def _blank(image: np.ndarray, window: Window, windows: Sequence[Window]) -> np.ndarray:
    """``image`` (uint8 [C, h, w] of ``window``) with the pixels of ``windows`` set to zero (a copy
    when any is hit: the reader's array is not ours to change)."""
    col, row, width, height = window
    out = image
    for c, r, w, h in windows:
        x0, y0 = max(c - col, 0), max(r - row, 0)
        x1, y1 = min(c + w - col, width), min(r + h - row, height)
        if x1 > x0 and y1 > y0:
            if out is image:
                out = image.copy()
            out[:, y0:y1, x0:x1] = 0
    return out
