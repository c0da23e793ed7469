"""The CPU deformable conv (grid sampling + matmul) against torchvision's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import deform_conv2d

from fsanet_geo.model.deform import DeformConv3x3, deform_conv3x3_sampled


def _case(b: int, c: int, h: int, w: int, groups: int, out: int, offset_scale: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=gen)
    offset = torch.randn(b, groups * 18, h, w, generator=gen) * offset_scale
    weight = torch.randn(out, c, 3, 3, generator=gen)
    return x, offset, weight


@pytest.mark.parametrize(
    ("b", "c", "h", "w", "groups", "out"),
    [(2, 8, 5, 7, 4, 6), (1, 16, 1, 1, 4, 3), (1, 8, 3, 1, 2, 5), (3, 4, 6, 4, 1, 2)],
)
def test_sampled_equals_torchvision(b: int, c: int, h: int, w: int, groups: int, out: int) -> None:
    x, offset, weight = _case(b, c, h, w, groups, out, offset_scale=2.0, seed=0)
    expected = deform_conv2d(x, offset, weight, padding=(1, 1))
    got = deform_conv3x3_sampled(x, offset, weight, groups)
    assert got.shape == (b, out, h, w)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 2),
    groups=st.sampled_from([1, 2, 4]),
    per_group=st.integers(1, 3),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    offset_scale=st.floats(0.0, 4.0),
    seed=st.integers(0, 10_000),
)
def test_sampled_equals_torchvision_property(
    b: int, groups: int, per_group: int, h: int, w: int, offset_scale: float, seed: int
) -> None:
    x, offset, weight = _case(b, groups * per_group, h, w, groups, 3, offset_scale, seed)
    expected = deform_conv2d(x, offset, weight, padding=(1, 1))
    torch.testing.assert_close(
        deform_conv3x3_sampled(x, offset, weight, groups), expected, atol=1e-4, rtol=1e-4
    )


def test_gradients_equal_torchvision() -> None:
    x, offset, weight = _case(2, 8, 5, 6, 4, 4, offset_scale=1.5, seed=3)
    grads = []
    for fn in (
        lambda a, o, k: deform_conv2d(a, o, k, padding=(1, 1)),
        lambda a, o, k: deform_conv3x3_sampled(a, o, k, 4),
    ):
        a, o, k = (t.clone().requires_grad_(True) for t in (x, offset, weight))
        (fn(a, o, k) * torch.linspace(-1, 1, 4 * 5 * 6).view(1, 4, 5, 6)).sum().backward()
        grads.append((a.grad, o.grad, k.grad))
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-3)


def test_zero_offset_is_a_plain_conv() -> None:
    x, _, weight = _case(2, 8, 5, 7, 4, 6, offset_scale=0.0, seed=1)
    offset = torch.zeros(2, 72, 5, 7)
    torch.testing.assert_close(
        deform_conv3x3_sampled(x, offset, weight, 4), F.conv2d(x, weight, padding=1), atol=1e-4, rtol=1e-4
    )


def test_offset_layout_is_dy_then_dx() -> None:
    """Only the centre tap (k = 4) is non-zero; its (dy, dx) = (1, 0) reads the row below."""
    x = torch.arange(20.0).view(1, 1, 4, 5)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0
    offset = torch.zeros(1, 18, 4, 5)
    offset[0, 2 * 4] = 1.0  # dy of the centre tap
    got = deform_conv3x3_sampled(x, offset, weight, 1)
    expected = torch.cat((x[:, :, 1:], torch.zeros(1, 1, 1, 5)), dim=2)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=(1, 1)), expected)
    offset = torch.zeros(1, 18, 4, 5)
    offset[0, 2 * 4 + 1] = -0.5  # dx: half a pixel to the left
    got = deform_conv3x3_sampled(x, offset, weight, 1)
    expected = x - 0.5
    expected[..., 0] = x[..., 0] * 0.5  # the left neighbour is outside: zero padding
    torch.testing.assert_close(got, expected)


def test_module_uses_the_sampled_path_on_cpu() -> None:
    conv = DeformConv3x3(8, 4, deform_groups=4)
    x, offset, _ = _case(1, 8, 6, 5, 4, 4, offset_scale=1.0, seed=5)
    out = conv(x, offset)
    torch.testing.assert_close(out, deform_conv2d(x, offset, conv.weight, padding=(1, 1)), atol=1e-4, rtol=1e-4)
    assert "deform_groups=4" in repr(conv)


def test_bad_shapes_raise() -> None:
    x = torch.zeros(1, 6, 4, 4)
    with pytest.raises(ValueError, match="not divisible"):
        deform_conv3x3_sampled(x, torch.zeros(1, 72, 4, 4), torch.zeros(2, 6, 3, 3), 4)
    with pytest.raises(ValueError, match="offset shape"):
        deform_conv3x3_sampled(torch.zeros(1, 8, 4, 4), torch.zeros(1, 72, 3, 4), torch.zeros(2, 8, 3, 3), 4)


def test_large_batches_are_processed_image_by_image(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsanet_geo.model.deform as deform

    x, offset, weight = _case(3, 8, 5, 6, 4, 4, offset_scale=1.0, seed=9)
    whole = deform_conv3x3_sampled(x, offset, weight, 4)
    monkeypatch.setattr(deform, "_MAX_SAMPLED_ELEMENTS", 10)
    torch.testing.assert_close(deform.deform_conv3x3_sampled(x, offset, weight, 4), whole)
