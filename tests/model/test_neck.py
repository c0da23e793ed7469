"""Necks: FA2M alignment (zero offsets = bilinear upsampling, hand-computed shifts), shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fsanet_geo.model.neck import AlignFPN, FeatureAlign, PlainFPN, base_grid


def test_base_grid_corners() -> None:
    grid = base_grid(3, 5, torch.device("cpu"), torch.float32)
    assert grid.shape == (3, 5, 2)
    torch.testing.assert_close(grid[0, 0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(grid[2, 4], torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(grid[1, 2], torch.tensor([0.0, 0.0]))


def test_fa2m_with_zero_offsets_is_bilinear_upsampling() -> None:
    torch.manual_seed(0)
    align = FeatureAlign(8)
    nn.init.zeros_(align.pointwise.weight)  # offsets are exactly zero
    low = torch.randn(2, 8, 9, 13)
    high = torch.randn(2, 8, 5, 7)
    up = F.interpolate(high, size=(9, 13), mode="bilinear", align_corners=True)
    torch.testing.assert_close(align.offsets(low, high), torch.zeros(2, 2, 9, 13))
    torch.testing.assert_close(align(low, high), low + up, atol=1e-5, rtol=1e-5)


def test_fa2m_offset_units_hand_values() -> None:
    """x offset 1 on a (4, 10) grid shifts by 1/10 in [-1, 1] units: 0.2 coarse pixels here."""
    align = FeatureAlign(1)
    high = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 2, 5).contiguous()  # value = column
    offset = torch.zeros(1, 2, 4, 10)
    offset[:, 0] = 1.0
    warped = align.warp(high, offset)
    cols = torch.arange(10.0)
    expected = 4 * cols / 9 + 0.2
    expected[9] = 0.8 * 4.0  # 4.2 lies beyond the last column: zero padding takes 0.2
    torch.testing.assert_close(warped[0, 0, 0], expected)
    torch.testing.assert_close(warped[0, 0, 3], expected)
    offset = torch.zeros(1, 2, 4, 10)
    offset[:, 1] = -2.0  # y offset: -2/4 in [-1, 1] units: a quarter of the coarse height up
    warped = align.warp(high, offset)
    # rows sample y = (2i/3 - 1 - 0.5 + 1)/2 * 1 pixels; the top rows fall partly outside.
    row0_weight = 1.0 - 0.25  # y = -0.25: 75 % of row 0, 25 % of the (zero) padding
    torch.testing.assert_close(warped[0, 0, 0], row0_weight * (4 * cols / 9))


def test_fa2m_gradients_reach_the_offset_convs() -> None:
    align = FeatureAlign(4)
    low, high = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4, requires_grad=True)
    align(low, high).square().sum().backward()
    assert align.pointwise.weight.grad is not None and align.pointwise.weight.grad.abs().sum() > 0
    assert align.depthwise.weight.grad is not None and align.depthwise.weight.grad.abs().sum() > 0
    assert high.grad is not None and high.grad.abs().sum() > 0


@pytest.mark.parametrize("neck_cls", [AlignFPN, PlainFPN])
def test_neck_shapes_for_odd_sizes(neck_cls: type[nn.Module]) -> None:
    neck = neck_cls([16, 32, 64], 32)
    features = [torch.randn(3, 16, 13, 9), torch.randn(3, 32, 7, 5), torch.randn(3, 64, 4, 3)]
    outs = neck(features)
    assert [tuple(o.shape) for o in outs] == [(3, 32, 13, 9), (3, 32, 7, 5), (3, 32, 4, 3)]


def test_align_fpn_structure_and_init() -> None:
    neck = AlignFPN([128, 256, 512], 64, norm_groups=32)
    for lateral in neck.lateral:
        assert lateral[0].bias is None and isinstance(lateral[1], nn.GroupNorm)
        assert lateral[1].num_groups == 32
    assert len(neck.align) == 2
    assert neck.align[0].depthwise.groups == 128 and neck.align[0].depthwise.bias is None
    assert tuple(neck.align[0].pointwise.weight.shape) == (2, 128, 1, 1)
    for conv in neck.output:
        assert torch.count_nonzero(conv.bias) == 0
        bound = (6 / (64 * 9 + 64 * 9)) ** 0.5  # Xavier-uniform
        assert conv.weight.abs().max() <= bound


def test_align_fpn_p5_is_conv_of_the_lateral_only() -> None:
    torch.manual_seed(0)
    neck = AlignFPN([8, 8, 8], 32, norm_groups=8)
    features = [torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)]
    p5 = neck(features)[2]
    torch.testing.assert_close(p5, neck.output[2](neck.lateral[2](features[2])))
    changed = [features[0] * 2, features[1] * 3, features[2]]
    torch.testing.assert_close(neck(changed)[2], p5)


def test_plain_fpn_top_down_is_nearest_sum() -> None:
    neck = PlainFPN([4, 4, 4], 8)
    features = [torch.randn(1, 4, 8, 8), torch.randn(1, 4, 4, 4), torch.randn(1, 4, 2, 2)]
    l3, l4, l5 = (lat(f) for lat, f in zip(neck.lateral, features))
    m4 = l4 + F.interpolate(l5, size=(4, 4), mode="nearest")
    m3 = l3 + F.interpolate(m4, size=(8, 8), mode="nearest")
    torch.testing.assert_close(neck(features)[0], neck.output[0](m3))
