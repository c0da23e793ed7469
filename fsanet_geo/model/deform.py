"""Deformable 3x3 convolution (stride 1, padding 1) with deform groups.

On CUDA this calls :func:`torchvision.ops.deform_conv2d`. On CPU torchvision's kernel is
slow (about 7x a dense conv), so the same operation is written two other ways, both equal
to torchvision's within float rounding, values and gradients (tested):

- :func:`deform_conv3x3_gather` (the CPU path, training and inference): the four bilinear
  corner indices and weights are computed once per (pixel, tap, deform group), for the whole
  map; the input, channels-last with a zero border, is a table of rows of C/G channels, and
  :func:`torch.nn.functional.embedding_bag` gathers and weights the 4 corner rows in one
  fused call; one GEMM with the kernel follows. In inference the gathers and GEMMs run in
  blocks of pixels so the sampled columns stay in the CPU cache.
  :func:`deform_conv3x3_gather_shared` runs several convs that share one offset map (SAGH's
  classification and regression convs, through :class:`SharedOffsetDeform`) on one set of
  corners;
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
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import deform_conv2d

KERNEL_TAPS = 9
_MAX_SAMPLED_ELEMENTS = 1 << 26  # 256 MB of float32 sampled taps per call
_MAX_GATHER_INDICES = 1 << 25  # 128 MB of int32 corner indices per call
# Sampled floats per inference block (8 MB: 2427 pixels at C=96, 910 at C=256): large
# enough for few parallel regions (each one stalls when other processes share the cores),
# small enough for the CPU's cache (measured best of 1024-4096 pixels at C=96, 2 cores).
_GATHER_BLOCK_FLOATS = 1 << 21
_BORDER = 2  # zero pixels around the gather table (3 below / right: the clamped samples' +1 corners)


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


def _padded_corners(offset: Tensor) -> tuple[Tensor, Tensor]:
    """Corner rows and weights of every sample in the zero-bordered table of :func:`_padded_table`.

    Args:
        offset: Tensor[B, G * 18, H, W] offsets in feature pixels, torchvision layout.

    Returns:
        (index, weight), both Tensor[B*H*W, G*9*4] in (image, row, column) x (group, tap,
        corner) order: ``index`` (int32) the table row ``((b*(H+5) + y+2)*(W+5) + x+2) * G + g``
        of corner (y, x), ``weight`` its bilinear weight. Sample positions are clamped to
        [-2, H+1] x [-2, W+1]: beyond [-1, H] every corner lies in the zero border, so the
        clamp changes no value (zero padding, as torchvision) and no gradient (torchvision's
        is zero there too; the clamp's own gradient is zero only at its bounds). Weights
        carry the offsets' gradient; indices are integers.
    """
    b, channels, h, w = offset.shape
    groups = channels // (2 * KERNEL_TAPS)
    dtype, device = offset.dtype, offset.device
    hp, wp = h + 2 * _BORDER + 1, w + 2 * _BORDER + 1
    off = offset.permute(0, 2, 3, 1).reshape(b, h, w, groups, KERNEL_TAPS, 2)
    taps = torch.arange(KERNEL_TAPS, device=device)
    rows = torch.arange(h, device=device, dtype=dtype).view(h, 1, 1) + (taps // 3 - 1).to(dtype)  # [H, 1, 9]
    cols = torch.arange(w, device=device, dtype=dtype).view(w, 1, 1) + (taps % 3 - 1).to(dtype)  # [W, 1, 9]
    # Every op below runs on whole [B, H, W, G, 9] tensors: few, large, contiguous passes.
    py = (off[..., 0] + rows.unsqueeze(1)).clamp(-_BORDER, h + _BORDER - 1)  # sample row
    px = (off[..., 1] + cols).clamp(-_BORDER, w + _BORDER - 1)  # sample column
    y0f, x0f = py.floor(), px.floor()
    fy, fx = py - y0f, px - x0f
    gy, gx = 1 - fy, 1 - fx
    weight = torch.stack((gy * gx, gy * fx, fy * gx, fy * fx), -1)
    # NaN offsets: clamp the integer corners too, so that every index stays inside the table.
    y0 = y0f.to(torch.int32).clamp_(-_BORDER, h + _BORDER - 1)
    x0 = x0f.to(torch.int32).clamp_(-_BORDER, w + _BORDER - 1)
    image = torch.arange(b, device=device, dtype=torch.int32).view(b, 1, 1, 1, 1)
    group = torch.arange(groups, device=device, dtype=torch.int32).view(groups, 1)
    first = ((image * hp + _BORDER) * wp + _BORDER) * groups + group  # row of corner (0, 0)
    i00 = y0 * (wp * groups) + x0 * groups + first
    index = torch.stack((i00, i00 + groups, i00 + wp * groups, i00 + (wp + 1) * groups), -1)
    return index.view(b * h * w, -1), weight.view(b * h * w, -1)


def _padded_table(x: Tensor, groups: int) -> Tensor:
    """Tensor[B, C, H, W] -> Tensor[B*(H+5)*(W+5)*G, C/G]: channels-last rows, zero border
    of 2 pixels above / left and 3 below / right (the corners of clamped samples)."""
    b, c, h, w = x.shape
    table = x.new_zeros(b, h + 2 * _BORDER + 1, w + 2 * _BORDER + 1, c)
    table[:, _BORDER : h + _BORDER, _BORDER : w + _BORDER].copy_(x.permute(0, 2, 3, 1))
    return table.view(-1, c // groups)


def deform_conv3x3_gather_shared(
    inputs: Sequence[Tensor], offset: Tensor, weights: Sequence[Tensor], deform_groups: int
) -> list[Tensor]:
    """Deformable 3x3 convs of inputs that share one offset map (CPU path, differentiable).

    The bilinear corners and weights are computed once and gather every input (SAGH's
    classification and regression convs share their offsets).

    Args:
        inputs: Tensor[B, C, H, W] each, all the same shape (any memory format).
        offset: Tensor[B, G * 18, H, W] offsets in feature pixels, torchvision layout.
        weights: Tensor[O_i, C, 3, 3] the kernel of each input (no bias).
        deform_groups: G, dividing C.

    Returns:
        Tensor[B, O_i, H, W] per input, channels-last memory format.
    """
    for x in inputs:
        _check_shapes(x, offset, deform_groups)
    b, c, h, w = inputs[0].shape
    g = deform_groups
    pixels = b * h * w
    if b * (h + 2 * _BORDER + 1) * (w + 2 * _BORDER + 1) * g >= 2**31:
        raise ValueError(f"input {tuple(inputs[0].shape)} is too large for int32 gather indices; split the batch")
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (*inputs, offset, *weights))
    if grad and b > 1 and pixels * g * 4 * KERNEL_TAPS > _MAX_GATHER_INDICES:
        # Bound the memory of the corner indices kept for backward: one image at a time.
        per_image = [
            deform_conv3x3_gather_shared([x[i : i + 1] for x in inputs], offset[i : i + 1], weights, g)
            for i in range(b)
        ]
        return [torch.cat(outs) for outs in zip(*per_image, strict=True)]
    tables = [_padded_table(x, g) for x in inputs]
    # Kernel Tensor[O, C, 3, 3] -> [(g, tap, c_g), O], the order of the sampled columns.
    kernels = [
        k.reshape(k.shape[0], g, c // g, KERNEL_TAPS).permute(1, 3, 2, 0).reshape(KERNEL_TAPS * c, -1)
        for k in weights
    ]
    # Corners of the whole map at once: few large parallel regions (many small ones stall
    # when other processes share the cores).
    index, corner_weight = _padded_corners(offset)
    if grad:  # one pass: autograd keeps the corners for backward
        outs = [_gathered(index, corner_weight, table) @ k for table, k in zip(tables, kernels, strict=True)]
    else:  # blocks of pixels: the sampled columns stay in the CPU cache for their GEMM
        outs = [inputs[0].new_empty(pixels, k.shape[1]) for k in kernels]
        block = max(1, _GATHER_BLOCK_FLOATS // (KERNEL_TAPS * c))
        for start in range(0, pixels, block):
            stop = min(pixels, start + block)
            for table, kernel, out in zip(tables, kernels, outs, strict=True):
                cols = _gathered(index[start:stop], corner_weight[start:stop], table)
                torch.mm(cols, kernel, out=out[start:stop])
    return [out.view(b, h, w, -1).permute(0, 3, 1, 2) for out in outs]


def _gathered(index: Tensor, weight: Tensor, table: Tensor) -> Tensor:
    """Sampled columns Tensor[P, 9*C], order (g, tap, c_g): each (pixel, g, tap) sums its 4
    weighted corner rows of ``table`` in one fused :func:`torch.nn.functional.embedding_bag`."""
    cols = F.embedding_bag(index.view(-1, 4), table, per_sample_weights=weight.view(-1, 4), mode="sum")
    return cols.view(index.shape[0], -1)


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
    return deform_conv3x3_gather_shared([x], offset, [weight], deform_groups)[0]


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


class SharedOffsetDeform(nn.Module):
    """Deformable convs that share one offset map (SAGH's classification and regression convs).

    Holds no weights: ``forward(convs, inputs, offset)`` runs each :class:`DeformConv3x3` of
    ``convs`` on its Tensor[B, C, H, W] of ``inputs`` with the one Tensor[B, G*18, H, W]
    ``offset`` and returns their outputs. On CPU (outside export and tracing) the convs run
    as one :func:`deform_conv3x3_gather_shared` call, which computes the bilinear corners
    once for all of them; on CUDA or while exported, each conv's own forward.
    """

    def forward(self, convs: Sequence[DeformConv3x3], inputs: Sequence[Tensor], offset: Tensor) -> list[Tensor]:
        shared = (
            not offset.is_cuda
            and not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing())
            and len({conv.deform_groups for conv in convs}) == 1
            and len({x.shape for x in inputs}) == 1
        )
        if not shared:
            return [conv(x, offset) for conv, x in zip(convs, inputs, strict=True)]
        weights = [conv.weight for conv in convs]
        return deform_conv3x3_gather_shared(inputs, offset, weights, convs[0].deform_groups)
