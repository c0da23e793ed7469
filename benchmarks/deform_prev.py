"""The CPU deformable conv as it was before the shared-offset path (benchmark reference only).

A frozen copy of ``fsanet_geo.model.deform.deform_conv3x3_gather`` of 2026-12-01 (commit
1aa38c3): per-conv corners with masks, 1024-pixel blocks. ``bench_compare.py`` times the
models with it (``prev`` variant), interleaved with the current path, so that the gain of
the change is measured in one run on a shared machine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fsanet_geo.model.deform import KERNEL_TAPS, _check_shapes

_MAX_GATHER_INDICES = 1 << 25
_GATHER_BLOCK_PIXELS = 1024


def _bilinear_corners(offset_rows: Tensor, start: int, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Corner rows and weights of a block of pixels for :func:`deform_conv3x3_gather`.

    Args:
        offset_rows: Tensor[P, G, 9, 2] the (dy, dx) offsets of the pixels ``start`` ..
            ``start + P - 1`` of the flattened (image, row, column) order.

    Returns:
        (index, weight), both Tensor[P, G*9*4] in (group, tap, corner) order: ``index``
        (int32) the row ``(b*H*W + y*W + x) * G + g`` of the channels-last table, ``weight``
        the bilinear weight, zero for corners outside the map (zero padding, as
        torchvision). Weights carry the offsets' gradient; indices are integers.
    """
    n, groups = offset_rows.shape[:2]
    dtype, device = offset_rows.dtype, offset_rows.device
    pixel = torch.arange(start, start + n, device=device, dtype=torch.int32)
    row, col = (pixel // w) % h, pixel % w
    taps = torch.arange(KERNEL_TAPS, device=device)
    rows = row.to(dtype).view(n, 1, 1) + (taps // 3 - 1).to(dtype)
    cols = col.to(dtype).view(n, 1, 1) + (taps % 3 - 1).to(dtype)
    py, px = rows + offset_rows[..., 0], cols + offset_rows[..., 1]  # [P, G, 9] sample row / column
    y0f, x0f = py.detach().floor(), px.detach().floor()
    fy, fx = py - y0f, px - x0f
    y0, x0 = y0f.to(torch.int32), x0f.to(torch.int32)
    wy = ((1 - fy) * ((y0 >= 0) & (y0 < h)), fy * ((y0 >= -1) & (y0 < h - 1)))
    wx = ((1 - fx) * ((x0 >= 0) & (x0 < w)), fx * ((x0 >= -1) & (x0 < w - 1)))
    ry = (y0.clamp(0, h - 1) * w, (y0 + 1).clamp(0, h - 1) * w)
    cx = (x0.clamp(0, w - 1), (x0 + 1).clamp(0, w - 1))
    base = (pixel - row * w - col).view(n, 1, 1)  # b * H * W
    group = torch.arange(groups, device=device, dtype=torch.int32).view(1, groups, 1)
    corners = [(i, j) for i in (0, 1) for j in (0, 1)]
    index = torch.stack([(base + ry[i] + cx[j]) * groups + group for i, j in corners], -1)
    weight = torch.stack([wy[i] * wx[j] for i, j in corners], -1)
    return index.view(n, -1), weight.view(n, -1)


def deform_conv3x3_gather(x: Tensor, offset: Tensor, weight: Tensor, deform_groups: int) -> Tensor:
    """Deformable 3x3 conv as fused bilinear gathers + one GEMM (CPU path, differentiable).

    Args:
        x: Tensor[B, C, H, W] input features (any memory format).
        offset: Tensor[B, G * 18, H, W] offsets in feature pixels, torchvision layout.
        weight: Tensor[O, C, 3, 3] kernel (no bias).
        deform_groups: G, dividing C.

    Returns:
        Tensor[B, O, H, W] in channels-last memory format.
    """
    _check_shapes(x, offset, deform_groups)
    b, c, h, w = x.shape
    g = deform_groups
    pixels = b * h * w
    if pixels * g >= 2**31:
        raise ValueError(f"input {tuple(x.shape)} is too large for int32 gather indices; split the batch")
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, offset, weight))
    if grad and b > 1 and pixels * g * 4 * KERNEL_TAPS > _MAX_GATHER_INDICES:
        # Bound the memory of the corner indices kept for backward: one image at a time.
        return torch.cat(
            [deform_conv3x3_gather(x[i : i + 1], offset[i : i + 1], weight, g) for i in range(b)]
        )
    offset_rows = offset.permute(0, 2, 3, 1).reshape(pixels, g, KERNEL_TAPS, 2)
    table = x.permute(0, 2, 3, 1).reshape(pixels * g, c // g)  # channels-last rows
    # Kernel Tensor[O, C, 3, 3] -> [(g, tap, c_g), O], the order of the sampled columns.
    kernel = weight.reshape(weight.shape[0], g, c // g, KERNEL_TAPS).permute(1, 3, 2, 0).reshape(KERNEL_TAPS * c, -1)

    index, corner_weight = _bilinear_corners(offset_rows, 0, h, w)

    def columns(start: int, stop: int) -> Tensor:  # [stop - start, 9C], order (g, tap, c_g)
        cols = F.embedding_bag(
            index[start:stop].view(-1, 4), table, per_sample_weights=corner_weight[start:stop].view(-1, 4), mode="sum"
        )
        return cols.view(stop - start, KERNEL_TAPS * c)

    if grad:
        out = columns(0, pixels) @ kernel
    else:  # blocks of pixels: corners, sampled columns and GEMM stay in the CPU cache
        out = x.new_empty(pixels, weight.shape[0])
        for start in range(0, pixels, _GATHER_BLOCK_PIXELS):
            stop = min(pixels, start + _GATHER_BLOCK_PIXELS)
            torch.mm(columns(start, stop), kernel, out=out[start:stop])
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)
