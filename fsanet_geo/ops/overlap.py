"""Overlap of axis-aligned boxes: IoU and IoS, on numpy arrays or torch tensors.

Boxes are ``(x1, y1, x2, y2)`` in any one unit (pixels here). The same function serves
float64 numpy arrays (the seam merge) and torch tensors of any float dtype
(post-processing): the formula is written once, each library does its own arithmetic.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal, TypeVar

OverlapMetric = Literal["iou", "ios"]
OVERLAP_METRICS: tuple[OverlapMetric, ...] = ("iou", "ios")

Boxes = TypeVar("Boxes")  # np.ndarray or torch.Tensor; the result has the same type


def array_module(values: object) -> ModuleType:
    """The library of an array: ``numpy`` for an ndarray, ``torch`` for a Tensor."""
    return importlib.import_module(type(values).__module__.partition(".")[0])


def box_overlap(a: Boxes, b: Boxes, metric: OverlapMetric = "iou") -> Boxes:
    """Element-wise overlap of broadcastable boxes ``a[..., 4]`` and ``b[..., 4]``.

    ``"iou"``: intersection over union (the formula of ``torchvision.ops.box_iou``);
    ``"ios"``: intersection over the smaller area (1.0 for a box lying inside another, such
    as a copy cut by a tile edge inside its whole twin). 0 where the denominator is 0.

    Returns:
        Overlaps of shape ``broadcast(a.shape[:-1], b.shape[:-1])``, in [0, 1] for proper
        boxes (x2 >= x1, y2 >= y1).
    """
    xp = array_module(a)
    width = xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0])
    height = xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1])
    inter = xp.clip(width, 0.0, None) * xp.clip(height, 0.0, None)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    if metric == "ios":
        denom = xp.minimum(area_a, area_b)
    else:
        denom = area_a + area_b - inter
    positive = denom > 0
    return xp.where(positive, inter / xp.where(positive, denom, 1.0), 0.0)


def pairwise_overlap(a: Boxes, b: Boxes, metric: OverlapMetric = "iou") -> Boxes:
    """Overlap of every box of ``a[N, 4]`` with every box of ``b[M, 4]``: shape [N, M]."""
    return box_overlap(a[:, None, :], b[None, :, :], metric)  # type: ignore[index]


__all__ = ["OVERLAP_METRICS", "OverlapMetric", "array_module", "box_overlap", "pairwise_overlap"]
