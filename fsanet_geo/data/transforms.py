"""Geometric transforms of an (image, boxes) pair, with exact pixel-edge arithmetic.

Every function takes ``image`` Tensor[C, H, W] (float32, 0..255) and ``boxes``
Tensor[M, 4] (float32, xyxy pixel edges: a box covering columns 3..5 has x1 = 3, x2 = 6)
and returns new tensors; inputs are never mutated.

Resize rule: the image is scaled so that its LONGER side equals ``input_size``, keeping
the aspect ratio (an 800 x 800 AI-TOD image stays 800 x 800 at the default size; a
1000 x 500 image becomes 800 x 400). The output size is rounded to whole pixels and the
boxes are scaled with the exact per-axis factors (new_w / w, new_h / h); the reported
``scale`` is ``input_size / max(h, w)``, which differs from those factors by less than
half a pixel over the image. Padding to a multiple of 32 is done by the model itself
(:class:`fsanet_geo.model.detector.FSANet`), not here.

Random choices draw from ``generator`` (a seeded :class:`torch.Generator` gives
reproducible augmentation) or from torch's global generator when it is None (which a
DataLoader seeds per worker).
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class DetectionTransform:
    """Resize (longer side = ``input_size``), then random flips and quarter turns.

    ``flip_h``/``flip_v`` are probabilities; with ``rot90`` each of the 4 quarter turns is
    equally likely (overhead imagery has no "up"). For evaluation use the defaults of
    :meth:`eval`: resize only.
    """

    input_size: int = 800
    flip_h: float = 0.0
    flip_v: float = 0.0
    rot90: bool = False

    @classmethod
    def eval(cls, input_size: int = 800) -> "DetectionTransform":
        return cls(input_size=input_size)

    def __call__(
        self, image: torch.Tensor, boxes: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Return (image [C, H', W'] float32, boxes [M, 4] float32, scale)."""
        image, boxes, scale = resize_longer_side(image, boxes, self.input_size)
        if self.flip_h > 0 and torch.rand((), generator=generator).item() < self.flip_h:
            image, boxes = hflip(image, boxes)
        if self.flip_v > 0 and torch.rand((), generator=generator).item() < self.flip_v:
            image, boxes = vflip(image, boxes)
        if self.rot90:
            k = int(torch.randint(0, 4, (), generator=generator).item())
            image, boxes = rot90(image, boxes, k)
        return image.contiguous(), boxes, scale
