"""Necks turning backbone maps C3, C4, C5 into P3, P4, P5 (strides 8, 16, 32).

- :class:`AlignFPN`: FSANet's FPN whose top-down path aligns the coarse map to the finer
  one with FA2M (:class:`FeatureAlign`) instead of plain upsampling.
- :class:`PlainFPN`: the usual FPN top-down path (nearest upsampling + sum), for the FCOS
  baseline and the ablations.

Dimension letters: B = images, C = channels, (h, w) = the finer level's grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _xavier_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Tensor[h, w, 2] of normalised (x, y) in [-1, 1] over an (h, w) grid (align_corners=True)."""
    ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=-1)


class FeatureAlign(nn.Module):
    """FA2M: ``forward(low: Tensor[B, C, h, w], high: Tensor[B, C, h', w']) -> Tensor[B, C, h, w]``.

    1. ``up`` = bilinear upsample of ``high`` to (h, w), align_corners=True;
    2. ``offset`` = pointwise 1x1 (2C -> 2) of depthwise 3x3 (2C groups) of concat[low, up];
       channel 0 is the x offset, channel 1 the y offset, in pixels of the (h, w) grid;
    3. ``grid`` = base grid in [-1, 1] + offset / (w, h);
    4. ``warped`` = grid_sample of the ORIGINAL coarse ``high`` at ``grid`` (bilinear,
       zero padding, align_corners=True);
    5. returns ``low + warped``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False
        )
        self.pointwise = nn.Conv2d(2 * channels, 2, 1, bias=False)

    def offsets(self, low: Tensor, high: Tensor) -> Tensor:
        """Tensor[B, 2, h, w]: (x, y) offsets in pixels of the finer grid."""
        up = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=True)
        return self.pointwise(self.depthwise(torch.cat((low, up), dim=1)))

    def warp(self, high: Tensor, offset: Tensor) -> Tensor:
        """Sample ``high`` Tensor[B, C, h', w'] on the finer grid shifted by ``offset`` Tensor[B, 2, h, w]."""
        b, _, h, w = offset.shape
        off = offset.permute(0, 2, 3, 1)
        # Per-channel division by the (traced, so ONNX-dynamic) sizes; same values as / [w, h].
        shift = torch.stack((off[..., 0] / w, off[..., 1] / h), dim=-1)
        grid = base_grid(h, w, offset.device, offset.dtype).unsqueeze(0) + shift
        return F.grid_sample(high, grid, mode="bilinear", padding_mode="zeros", align_corners=True)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return low + self.warp(high, self.offsets(low, high))


class AlignFPN(nn.Module):
    """FSANet's neck: ``forward([C3, C4, C5]) -> [P3, P4, P5]``, each Tensor[B, out_channels, ., .].

    Laterals: 1x1 conv (no bias) + GroupNorm; M4 = FA(L4, L5), M3 = FA(L3, M4);
    P5 = conv3x3(L5), P4 = conv3x3(M4), P3 = conv3x3(M3) (bias, no norm, no activation).
    Every conv Xavier-uniform, bias 0.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256, norm_groups: int = 32) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.lateral = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, out_channels, 1, bias=False), nn.GroupNorm(norm_groups, out_channels)
            )
            for c in in_channels
        )
        self.align = nn.ModuleList(FeatureAlign(out_channels) for _ in range(len(in_channels) - 1))
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        _xavier_init(self)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        laterals = [lat(f) for lat, f in zip(self.lateral, features, strict=True)]
        merged = [laterals[-1]]
        # Coarse to fine: align[i] merges level i with the merged level i + 1.
        for i in range(len(laterals) - 2, -1, -1):
            merged.insert(0, self.align[i](laterals[i], merged[0]))
        return [conv(m) for conv, m in zip(self.output, merged, strict=True)]


class PlainFPN(nn.Module):
    """The usual FPN: ``forward([C3, C4, C5]) -> [P3, P4, P5]``.

    Laterals 1x1 conv (bias); M_l = L_l + nearest-upsample(M_{l+1}); P_l = conv3x3(M_l).
    Every conv Xavier-uniform, bias 0 (as MMDetection's FPN).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels
        )
        _xavier_init(self)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        merged = [lat(f) for lat, f in zip(self.lateral, features, strict=True)]
        for i in range(len(merged) - 2, -1, -1):
            merged[i] = merged[i] + F.interpolate(merged[i + 1], size=merged[i].shape[-2:], mode="nearest")
        return [conv(m) for conv, m in zip(self.output, merged, strict=True)]
