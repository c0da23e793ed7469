"""The CPU deformable convs (fused gathers + GEMM; grid sampling + matmul) against torchvision's kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import deform_conv2d

from fsanet_geo.model.deform import DeformConv3x3, deform_conv3x3_gather, deform_conv3x3_sampled

IMPLEMENTATIONS = [deform_conv3x3_gather, deform_conv3x3_sampled]


def _case(b: int, c: int, h: int, w: int, groups: int, out: int, offset_scale: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, h, w, generator=gen)
    offset = torch.randn(b, groups * 18, h, w, generator=gen) * offset_scale
    weight = torch.randn(out, c, 3, 3, generator=gen)
    return x, offset, weight


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("b", "c", "h", "w", "groups", "out"),
    [(2, 8, 5, 7, 4, 6), (1, 16, 1, 1, 4, 3), (1, 8, 3, 1, 2, 5), (3, 4, 6, 4, 1, 2)],
)
def test_equals_torchvision(impl, b: int, c: int, h: int, w: int, groups: int, out: int) -> None:
    x, offset, weight = _case(b, c, h, w, groups, out, offset_scale=2.0, seed=0)
    expected = deform_conv2d(x, offset, weight, padding=(1, 1))
    got = impl(x, offset, weight, groups)
    assert got.shape == (b, out, h, w)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(
    impl=st.sampled_from(IMPLEMENTATIONS),
    b=st.integers(1, 2),
    groups=st.sampled_from([1, 2, 4]),
    per_group=st.integers(1, 3),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    offset_scale=st.floats(0.0, 4.0),
    seed=st.integers(0, 10_000),
)
def test_equals_torchvision_property(
    impl, b: int, groups: int, per_group: int, h: int, w: int, offset_scale: float, seed: int
) -> None:
    x, offset, weight = _case(b, groups * per_group, h, w, groups, 3, offset_scale, seed)
    expected = deform_conv2d(x, offset, weight, padding=(1, 1))
    torch.testing.assert_close(impl(x, offset, weight, groups), expected, atol=1e-4, rtol=1e-4)


def _gradients(fn, x, offset, weight, upstream):
    a, o, k = (t.clone().requires_grad_(True) for t in (x, offset, weight))
    (fn(a, o, k) * upstream).sum().backward()
    return a.grad, o.grad, k.grad


def test_gradients_equal_torchvision() -> None:
    x, offset, weight = _case(2, 8, 5, 6, 4, 4, offset_scale=1.5, seed=3)
    upstream = torch.linspace(-1, 1, 4 * 5 * 6).view(1, 4, 5, 6)
    theirs = _gradients(lambda a, o, k: deform_conv2d(a, o, k, padding=(1, 1)), x, offset, weight, upstream)
    ours = _gradients(lambda a, o, k: deform_conv3x3_sampled(a, o, k, 4), x, offset, weight, upstream)
    for got, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-3, rtol=1e-3)


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 2),
    groups=st.sampled_from([1, 2, 4]),
    per_group=st.integers(1, 3),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    out=st.integers(1, 4),
    offset_scale=st.floats(0.0, 5.0),
    seed=st.integers(0, 10_000),
)
def test_gather_gradients_equal_torchvision(
    b: int, groups: int, per_group: int, h: int, w: int, out: int, offset_scale: float, seed: int
) -> None:
    """Values and the gradients of input, offsets and kernel within 1e-4 (training uses this path)."""
    x, offset, weight = _case(b, groups * per_group, h, w, groups, out, offset_scale, seed)
    upstream = torch.randn(b, out, h, w, generator=torch.Generator().manual_seed(seed + 1))
    theirs = _gradients(lambda a, o, k: deform_conv2d(a, o, k, padding=(1, 1)), x, offset, weight, upstream)
    ours = _gradients(lambda a, o, k: deform_conv3x3_gather(a, o, k, groups), x, offset, weight, upstream)
    for got, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_samples_outside_the_map_read_zeros() -> None:
    """Every tap pushed 10 px off the map (and one half inside the border) as torchvision."""
    x, _, weight = _case(1, 4, 5, 6, 2, 3, offset_scale=0.0, seed=4)
    far = torch.full((1, 36, 5, 6), 10.0)
    assert deform_conv3x3_gather(x, far, weight, 2).abs().max() == 0
    edge = torch.full((1, 36, 5, 6), -0.5)
    edge[:, 1::2] = 5.7  # dx: beyond the right edge for most columns, partly inside for column 0
    torch.testing.assert_close(
        deform_conv3x3_gather(x, edge, weight, 2), deform_conv2d(x, edge, weight, padding=(1, 1)),
        atol=1e-5, rtol=1e-5,
    )


def test_inference_blocks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsanet_geo.model.deform as deform

    x, offset, weight = _case(2, 8, 9, 7, 4, 5, offset_scale=2.0, seed=6)
    whole = deform_conv3x3_gather(x, offset, weight, 4)
    monkeypatch.setattr(deform, "_GATHER_BLOCK_FLOATS", 10 * 9 * 8)  # 10 of 126 pixels a block: 13, last partial
    with torch.inference_mode():
        blocked = deform.deform_conv3x3_gather(x, offset, weight, 4)
    torch.testing.assert_close(blocked, whole)
    monkeypatch.setattr(deform, "_MAX_GATHER_INDICES", 10)  # training: image by image
    calls = []
    original = deform.deform_conv3x3_gather_shared
    monkeypatch.setattr(deform, "deform_conv3x3_gather_shared", lambda *a: calls.append(a[0][0].shape[0]) or original(*a))
    per_image = deform.deform_conv3x3_gather(x.requires_grad_(True), offset, weight, 4)
    assert calls == [2, 1, 1]
    torch.testing.assert_close(per_image.detach(), whole)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_zero_offset_is_a_plain_conv(impl) -> None:
    x, _, weight = _case(2, 8, 5, 7, 4, 6, offset_scale=0.0, seed=1)
    offset = torch.zeros(2, 72, 5, 7)
    torch.testing.assert_close(impl(x, offset, weight, 4), F.conv2d(x, weight, padding=1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_offset_layout_is_dy_then_dx(impl) -> None:
    """Only the centre tap (k = 4) is non-zero; its (dy, dx) = (1, 0) reads the row below."""
    x = torch.arange(20.0).view(1, 1, 4, 5)
    weight = torch.zeros(1, 1, 3, 3)
    weight[0, 0, 1, 1] = 1.0
    offset = torch.zeros(1, 18, 4, 5)
    offset[0, 2 * 4] = 1.0  # dy of the centre tap
    got = impl(x, offset, weight, 1)
    expected = torch.cat((x[:, :, 1:], torch.zeros(1, 1, 1, 5)), dim=2)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, padding=(1, 1)), expected)
    offset = torch.zeros(1, 18, 4, 5)
    offset[0, 2 * 4 + 1] = -0.5  # dx: half a pixel to the left
    got = impl(x, offset, weight, 1)
    expected = x - 0.5
    expected[..., 0] = x[..., 0] * 0.5  # the left neighbour is outside: zero padding
    torch.testing.assert_close(got, expected)


def test_module_uses_the_gather_path_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsanet_geo.model.deform as deform

    conv = DeformConv3x3(8, 4, deform_groups=4)
    x, offset, _ = _case(1, 8, 6, 5, 4, 4, offset_scale=1.0, seed=5)
    calls = []
    monkeypatch.setattr(deform, "deform_conv3x3_gather", lambda *a: calls.append(a) or deform_conv3x3_gather(*a))
    out = conv(x, offset)
    assert len(calls) == 1
    torch.testing.assert_close(out, deform_conv2d(x, offset, conv.weight, padding=(1, 1)), atol=1e-4, rtol=1e-4)
    assert "deform_groups=4" in repr(conv)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_bad_shapes_raise(impl) -> None:
    x = torch.zeros(1, 6, 4, 4)
    with pytest.raises(ValueError, match="not divisible"):
        impl(x, torch.zeros(1, 72, 4, 4), torch.zeros(2, 6, 3, 3), 4)
    with pytest.raises(ValueError, match="offset shape"):
        impl(torch.zeros(1, 8, 4, 4), torch.zeros(1, 72, 3, 4), torch.zeros(2, 8, 3, 3), 4)


def test_large_batches_are_processed_image_by_image(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsanet_geo.model.deform as deform

    x, offset, weight = _case(3, 8, 5, 6, 4, 4, offset_scale=1.0, seed=9)
    whole = deform_conv3x3_sampled(x, offset, weight, 4)
    monkeypatch.setattr(deform, "_MAX_SAMPLED_ELEMENTS", 10)
    torch.testing.assert_close(deform.deform_conv3x3_sampled(x, offset, weight, 4), whole)
