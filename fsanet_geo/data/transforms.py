"""Geometric transforms of an (image, boxes) pair, with exact pixel-edge arithmetic.

Every function takes ``image`` Tensor[C, H, W] (float32, 0..255) and ``boxes``
Tensor[M, 4] (float32, xyxy pixel edges: a box covering columns 3..5 has x1 = 3, x2 = 6)
and returns new tensors; inputs are never mutated.

Native resolution is the default: the model sees the pixels ``fsanet detect`` gives it.
Training takes a random crop of ``crop_size`` pixels (the preset's ``input_size``) at
native scale; an image axis shorter than the crop is kept whole (never enlarged; the
model zero-pads the batch to a multiple of 32). Crop rule for boxes cut by the crop edge
(:func:`random_crop`): a box is clipped to the crop and kept when at least
:data:`MIN_VISIBLE` (half) of its area lies inside the crop and the clipped box is at
least one pixel wide and high; otherwise it is dropped (its pixels inside the crop are
then background for that item).

Resize rule (only when asked for, ``resize_to``): the image is scaled so that its LONGER
side equals ``resize_to``, keeping the aspect ratio (1000 x 500 becomes 800 x 400 at 800).
The output size is rounded to whole pixels and the boxes are scaled with the exact
per-axis factors (new_w / w, new_h / h); the reported ``scale`` is
``resize_to / max(h, w)``, which differs from those factors by less than half a pixel
over the image. Padding to a multiple of 32 is done by the model itself
(:class:`fsanet_geo.model.detector.FSANet`), not here.

Random choices draw from ``generator`` (a seeded :class:`torch.Generator` gives
reproducible augmentation) or from torch's global generator when it is None (which a
DataLoader seeds per worker). An image no larger than the crop draws no crop offset, so
the flips of an 800 px AI-TOD image with 800 px crops are drawn as before crops existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F


def resize_longer_side(image: torch.Tensor, boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Resize so that max(H, W) == ``size``; return (image [C, H', W'], boxes [M, 4], scale).

    Bilinear with antialiasing when shrinking. An image already at that size is returned
    as is (not copied).
    """
    _, h, w = image.shape
    scale = size / max(h, w)
    new_h, new_w = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    if (new_h, new_w) == (h, w):
        return image, boxes, 1.0
    out = F.interpolate(
        image[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False,
        antialias=scale < 1.0,
    )[0]
    factors = torch.tensor([new_w / w, new_h / h, new_w / w, new_h / h], dtype=boxes.dtype)
    return out, boxes * factors, scale


MIN_VISIBLE = 0.5
"""A box cut by a training crop's edge is kept when at least this fraction of its area is inside."""


def random_crop(
    image: torch.Tensor,
    boxes: torch.Tensor,
    size: int,
    generator: torch.Generator | None = None,
    *,
    min_visible: float = MIN_VISIBLE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A ``size`` x ``size`` crop at a uniformly random whole-pixel offset, native scale.

    Returns (image [C, min(H, size), min(W, size)], boxes [K, 4] clipped to the crop in crop
    pixels, keep: bool [M], True for the K input boxes kept; see the module docstring for the
    rule). An axis no longer than ``size`` is kept whole and draws no random number.
    """
    _, h, w = image.shape
    row = _offset(h, size, generator)
    col = _offset(w, size, generator)
    if (row, col) == (0, 0) and h <= size and w <= size:
        return image, boxes, torch.ones(len(boxes), dtype=torch.bool)
    crop_h, crop_w = min(h, size), min(w, size)
    kept, keep = clip_to_window(boxes, col, row, crop_w, crop_h, min_visible=min_visible)
    return image[:, row : row + crop_h, col : col + crop_w], kept, keep


def clip_to_window(
    boxes: torch.Tensor, col: int, row: int, width: int, height: int, *, min_visible: float = MIN_VISIBLE
) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop rule for boxes [M, 4] and the window at (``col``, ``row``), ``width`` x ``height`` px.

    Returns (boxes [K, 4] clipped to the window, in window pixels; keep: bool [M]): a box is kept
    when at least ``min_visible`` of its area is inside and the clipped box is >= 1 px each way.
    """
    shift = torch.tensor([col, row, col, row], dtype=boxes.dtype)
    limit = torch.tensor([width, height, width, height], dtype=boxes.dtype)
    moved = boxes - shift
    clipped = torch.minimum(moved.clamp(min=0), limit)
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    keep = (cw >= 1) & (ch >= 1) & (cw * ch >= min_visible * area)
    return clipped[keep], keep


def _offset(length: int, size: int, generator: torch.Generator | None) -> int:
    """A uniform start in [0, length - size] (0 without drawing when the axis fits)."""
    if length <= size:
        return 0
    return int(torch.randint(0, length - size + 1, (), generator=generator).item())


def hflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left-right: column c -> W - 1 - c, so x1' = W - x2 and x2' = W - x1."""
    w = image.shape[-1]
    out = boxes.clone()
    out[:, 0] = w - boxes[:, 2]
    out[:, 2] = w - boxes[:, 0]
    return image.flip(-1), out


def vflip(image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror top-bottom: row r -> H - 1 - r, so y1' = H - y2 and y2' = H - y1."""
    h = image.shape[-2]
    out = boxes.clone()
    out[:, 1] = h - boxes[:, 3]
    out[:, 3] = h - boxes[:, 1]
    return image.flip(-2), out


def rot90(image: torch.Tensor, boxes: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate by k quarter turns counter-clockwise (as ``torch.rot90(image, k, (1, 2))``).

    One turn sends pixel (row r, col c) of a W-wide image to (row W - 1 - c, col r), so
    the box (x1, y1, x2, y2) becomes (y1, W - x2, y2, W - x1); the output is W x H.
    """
    k %= 4
    out_boxes = boxes
    width = image.shape[-1]
    height = image.shape[-2]
    for _ in range(k):
        x1, y1, x2, y2 = out_boxes.unbind(-1)
        out_boxes = torch.stack([y1, width - x2, y2, width - x1], dim=-1)
        width, height = height, width
    return torch.rot90(image, k, dims=(-2, -1)), out_boxes


class Transformed(NamedTuple):
    """A transformed item: ``image`` [C, H', W'] float32, ``boxes`` [K, 4] of the kept
    boxes, ``keep`` bool [M] (which input boxes were kept), ``scale`` (resized / original)."""

    image: torch.Tensor
    boxes: torch.Tensor
    keep: torch.Tensor
    scale: float


@dataclass(frozen=True)
class DetectionTransform:
    """Optional resize (``resize_to``: longer side, pixels), optional random native-scale
    crop (``crop_size``, pixels), then random flips and quarter turns.

    ``flip_h``/``flip_v`` are probabilities; with ``rot90`` each of the 4 quarter turns is
    equally likely (overhead imagery has no "up"). For evaluation use :meth:`eval`: the
    image at native size (or resized when ``resize_to`` is given), no randomness.
    """

    crop_size: int | None = None
    resize_to: int | None = None
    flip_h: float = 0.0
    flip_v: float = 0.0
    rot90: bool = False

    @classmethod
    def eval(cls, resize_to: int | None = None) -> "DetectionTransform":
        return cls(resize_to=resize_to)

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator | None = None
    ) -> Transformed:
        """Transform one item (see :class:`Transformed`)."""
        scale = 1.0
        if self.resize_to is not None:
            image, boxes, scale = resize_longer_side(image, boxes, self.resize_to)
        keep = torch.ones(len(boxes), dtype=torch.bool)
        if self.crop_size is not None:
            image, boxes, keep = random_crop(image, boxes, self.crop_size, generator)
        if self.flip_h > 0 and torch.rand((), generator=generator).item() < self.flip_h:
            image, boxes = hflip(image, boxes)
        if self.flip_v > 0 and torch.rand((), generator=generator).item() < self.flip_v:
            image, boxes = vflip(image, boxes)
        if self.rot90:
            k = int(torch.randint(0, 4, (), generator=generator).item())
            image, boxes = rot90(image, boxes, k)
        return Transformed(image.contiguous(), boxes, keep, scale)
