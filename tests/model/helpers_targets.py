"""Shared helpers of the targets / losses / post-processing tests: HeadOutputs by hand."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from fsanet_geo.model.outputs import HeadOutputs


def unflatten_levels(flat: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """[B, N, C] per-point values -> per-level [B, C, H_l, W_l] maps (row-major points)."""
    maps = []
    start = 0
    for height, width in sizes:
        stop = start + height * width
        part = flat[:, start:stop, :]
        maps.append(part.transpose(1, 2).reshape(flat.shape[0], flat.shape[2], height, width))
        start = stop
    assert start == flat.shape[1], "sizes do not cover every point"
    return maps


def make_outputs(
    sizes: Sequence[tuple[int, int]],
    cls_logits: Tensor,
    box_refine: Tensor,
    centerness: Tensor,
    box_init: Tensor | None = None,
) -> HeadOutputs:
    """HeadOutputs from per-point tensors: cls [B, N, K], boxes [B, N, 4], centerness [B, N]."""
    return HeadOutputs(
        cls_logits=unflatten_levels(cls_logits, sizes),
        box_refine=unflatten_levels(box_refine, sizes),
        centerness=unflatten_levels(centerness[..., None], sizes),
        box_init=None if box_init is None else unflatten_levels(box_init, sizes),
    )


def leaf(values: Sequence | Tensor) -> Tensor:
    """A float32 leaf tensor that requires grad."""
    return torch.as_tensor(values, dtype=torch.float32).clone().requires_grad_(True)
