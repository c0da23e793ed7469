"""Deformable 3x3 convolution (stride 1, padding 1) with deform groups.

On CUDA this calls :func:`torchvision.ops.deform_conv2d`. On CPU torchvision's kernel is
slow (about 7x a dense conv), so the same operation is written two other ways, both equal
to torchvision's within float rounding, values and gradients (tested):

- :func:`deform_conv3x3_gather` (the CPU path, training and inference): the four bilinear
  corner indices and weights are computed once per (pixel, tap, deform group); the input,
  channels-last, is a table of rows of C/G channels, and :func:`torch.nn.functional.embedding_bag`
  gathers and weights the 4 corner rows in one fused call; one GEMM with the kernel follows.
  In inference it runs in blocks of pixels so the sampled columns stay in the CPU cache
  (about 1.6x a dense conv of the same shape, against 4x for the grid-sample path);
- :func:`deform_conv3x3_sampled`: bilinear sampling of the 9 taps with
  :func:`torch.nn.functional.grid_sample` (one call) and one matrix multiply: the form
  ONNX export traces (``GridSample``, opset 16+), since ONNX has no ``EmbeddingBag``.

Offset layout (torchvision's): ``offset`` is Tensor[B, G * 9 * 2, H, W]; for deform group
g and kernel tap k = ky * 3 + kx, channel ``g * 18 + 2 * k`` is the y (row) offset and
``g * 18 + 2 * k + 1`` the x (column) offset, in pixels of the feature map. Tap k of the
output at (i, j) samples the input at (i - 1 + ky + dy, j - 1 + kx + dx); samples outside
the map read zeros (bilinear with zero padding).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

KERNEL_TAPS = 9
_MAX_SAMPLED_ELEMENTS = 1 << 26  # 256 MB of float32 sampled taps per call
_MAX_GATHER_INDICES = 1 << 25  # 128 MB of int32 corner indices per call
_GATHER_BLOCK_PIXELS = 1024  # GEMM rows per block: 1024 x 9C sampled floats (9 MB at C=256)


def _check_shapes(x: Tensor, offset: Tensor, deform_groups: int) -> None:
    b, c, h, w = x.shape
    if c % deform_groups:
        raise ValueError(f"{c} input channels are not divisible by {deform_groups} deform groups")
    if offset.shape != (b, deform_groups * 2 * KERNEL_TAPS, h, w):
        raise ValueError(f"offset shape {tuple(offset.shape)} does not fit input {tuple(x.shape)}")


def _sample_positions(offset: Tensor, h: int, w: int, groups: int) -> tuple[Tensor, Tensor]:
    """(rows, cols) sampled by each tap: Tensor[B, G, 9, H, W] each, in feature pixels."""
    b = offset.shape[0]
    off = offset.reshape(b, groups, KERNEL_TAPS, 2, h, w)
    dtype, device = offset.dtype, offset.device
    taps = torch.arange(KERNEL_TAPS, device=device)
    ky = (taps // 3 - 1).to(dtype).view(KERNEL_TAPS, 1, 1)
    kx = (taps % 3 - 1).to(dtype).view(KERNEL_TAPS, 1, 1)
    rows = torch.arange(h, device=device, dtype=dtype).view(1, h, 1)
    cols = torch.arange(w, device=device, dtype=dtype).view(1, 1, w)
    return rows + ky + off[:, :, :, 0], cols + kx + off[:, :, :, 1]


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


def deform_conv3x3_sampled(x: Tensor, offset: Tensor, weight: Tensor, deform_groups: int) -> Tensor:
    """Deformable 3x3 conv as grid sampling + one matmul (any device, differentiable).

    Args:
        x: Tensor[B, C, H, W] input features.
        offset: Tensor[B, G * 18, H, W] offsets in feature pixels, torchvision layout.
        weight: Tensor[O, C, 3, 3] kernel (no bias).
        deform_groups: G, dividing C.

    Returns:
        Tensor[B, O, H, W].
    """
    _check_shapes(x, offset, deform_groups)
    b, c, h, w = x.shape
    g = deform_groups
    out_channels = weight.shape[0]
    if b > 1 and b * c * KERNEL_TAPS * h * w > _MAX_SAMPLED_ELEMENTS:
        # Bound the memory of the sampled taps: one image at a time.
        return torch.cat(
            [deform_conv3x3_sampled(x[i : i + 1], offset[i : i + 1], weight, g) for i in range(b)]
        )
    py, px = _sample_positions(offset, h, w, g)  # [B, G, 9, H, W] sample row / column, pixels
    # Pixel -> normalised coordinates for align_corners=False: pixel p maps to (2p + 1) / n - 1
    # exactly (also for n == 1, where align_corners=True would be degenerate).
    grid = torch.stack(((2.0 * px + 1.0) / w - 1.0, (2.0 * py + 1.0) / h - 1.0), dim=-1)
    grid = grid.view(b * g, KERNEL_TAPS * h, w, 2)
    sampled = F.grid_sample(
        x.reshape(b * g, c // g, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )  # [B*G, C/G, 9*H, W]
    cols_mat = sampled.reshape(b, c * KERNEL_TAPS, h * w)  # channel order (g, c_g, tap)
    out = torch.matmul(weight.reshape(out_channels, c * KERNEL_TAPS), cols_mat)
    return out.view(b, out_channels, h, w)


class DeformConv3x3(nn.Module):
    """3x3 deformable convolution, stride 1, padding 1, no bias, ``deform_groups`` groups.

    ``forward(x: Tensor[B, C_in, H, W], offset: Tensor[B, G*18, H, W]) -> Tensor[B, C_out, H, W]``.
    Uses torchvision's CUDA kernel on GPU, :func:`deform_conv3x3_sampled` while being
    exported to ONNX (or traced) and :func:`deform_conv3x3_gather` otherwise (CPU).
    """

    def __init__(self, in_channels: int, out_channels: int, deform_groups: int = 4) -> None:
        super().__init__()
        if in_channels % deform_groups:
            raise ValueError(f"in_channels={in_channels} not divisible by deform_groups={deform_groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        if x.is_cuda:
            return deform_conv2d(x, offset, self.weight, padding=(1, 1))
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
            return deform_conv3x3_sampled(x, offset, self.weight, self.deform_groups)
        return deform_conv3x3_gather(x, offset, self.weight, self.deform_groups)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size=3, deform_groups={self.deform_groups}"
