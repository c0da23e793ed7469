"""Deformable convs sharing one offset map (SAGH's two convs): equal to two torchvision convs."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import deform_conv2d

from fsanet_geo.model import deform
from fsanet_geo.model.deform import SharedOffsetDeform, deform_conv3x3_gather_shared
from fsanet_geo.model.head import AlignHead


def _tv(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return deform_conv2d(x, offset, weight, padding=(1, 1))


def _pair_case(b: int, c: int, h: int, w: int, groups: int, outs: tuple[int, int], seed: int):
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(b, c, h, w, generator=gen) for _ in outs]
    weights = [torch.randn(o, c, 3, 3, generator=gen) for o in outs]
    return xs, weights, gen


def _grads(fn, xs, offset, weights, upstreams):
    """Outputs and the gradients of every input, the offsets and every kernel."""
    xs = [x.clone().requires_grad_(True) for x in xs]
    weights = [k.clone().requires_grad_(True) for k in weights]
    offset = offset.clone().requires_grad_(True)
    outs = fn(xs, offset, weights)
    sum((o * u).sum() for o, u in zip(outs, upstreams, strict=True)).backward()
    return [o.detach() for o in outs], [x.grad for x in xs] + [offset.grad] + [k.grad for k in weights]


@settings(max_examples=20, deadline=None)
@given(
    b=st.integers(1, 2),
    groups=st.sampled_from([1, 2, 4]),
    per_group=st.integers(1, 3),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    outs=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    offset_scale=st.floats(0.0, 6.0),
    integer_offsets=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_shared_equals_two_torchvision_convs_values_and_gradients(
    b: int, groups: int, per_group: int, h: int, w: int, outs: tuple[int, int],
    offset_scale: float, integer_offsets: bool, seed: int,
) -> None:
    """Random offsets, many samples off the map; integer offsets land exactly on the map's
    edges (-1, H) and on the clamp bounds, where the gradient rules are the subtle ones."""
    xs, weights, gen = _pair_case(b, groups * per_group, h, w, groups, outs, seed)
    offset = torch.randn(b, groups * 18, h, w, generator=gen) * offset_scale
    if integer_offsets:
        offset = offset.round()
    upstreams = [torch.randn(b, o, h, w, generator=gen) for o in outs]
    theirs = _grads(lambda a, o, k: [_tv(a[i], o, k[i]) for i in range(2)], xs, offset, weights, upstreams)
    ours = _grads(lambda a, o, k: deform_conv3x3_gather_shared(a, o, k, groups), xs, offset, weights, upstreams)
    for got, expected in zip(ours[0] + ours[1], theirs[0] + theirs[1], strict=True):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_shared_inference_blocks_equal_training_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    xs, weights, gen = _pair_case(2, 8, 7, 9, 4, (5, 3), seed=11)
    offset = torch.randn(2, 72, 7, 9, generator=gen) * 3
    one_pass = deform_conv3x3_gather_shared(xs, offset, weights, 4)  # grad mode off, but not inference
    monkeypatch.setattr(deform, "_GATHER_BLOCK_FLOATS", 16 * 9 * 8)  # 16 of 126 pixels per block
    with torch.inference_mode():
        blocked = deform_conv3x3_gather_shared(xs, offset, weights, 4)
    for got, expected, x, k in zip(blocked, one_pass, xs, weights, strict=True):
        assert got.shape == (2, k.shape[0], 7, 9)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(got, _tv(x, offset, k), atol=1e-4, rtol=1e-4)


def test_nan_offset_spoils_only_its_own_pixel() -> None:
    """A NaN offset must not index outside the table (no crash); only its pixel reads NaN."""
    xs, weights, gen = _pair_case(1, 4, 5, 6, 2, (3, 3), seed=2)
    offset = torch.randn(1, 36, 5, 6, generator=gen)
    offset[0, 7, 2, 3] = float("nan")
    with torch.inference_mode():
        got = deform_conv3x3_gather_shared(xs, offset, weights, 2)
    clean = offset.clone()
    clean[0, 7, 2, 3] = 0.0
    for out, x, k in zip(got, xs, weights, strict=True):
        assert out[0, :, 2, 3].isnan().all()
        mask = torch.ones(5, 6, dtype=torch.bool)
        mask[2, 3] = False
        torch.testing.assert_close(out[0][:, mask], _tv(x, clean, k)[0][:, mask], atol=1e-4, rtol=1e-4)


def test_shape_errors_name_the_problem() -> None:
    x = torch.zeros(1, 8, 4, 4)
    with pytest.raises(ValueError, match="offset shape"):
        deform_conv3x3_gather_shared([x, x], torch.zeros(1, 72, 3, 4), [torch.zeros(2, 8, 3, 3)] * 2, 4)
    with pytest.raises(ValueError, match="not divisible"):
        deform_conv3x3_gather_shared([torch.zeros(1, 6, 4, 4)], torch.zeros(1, 72, 4, 4), [torch.zeros(2, 6, 3, 3)], 4)


def _head() -> AlignHead:
    torch.manual_seed(0)
    head = AlignHead(16, num_classes=3, feat_channels=16, num_convs=1, num_levels=2, norm_groups=4)
    with torch.no_grad():  # offsets large enough to leave the map
        head.offset.weight.normal_(0.0, 2.0)
        head.box_init.weight.normal_(0.0, 0.5)
    return head.eval()


def test_head_runs_both_convs_on_one_set_of_corners(monkeypatch: pytest.MonkeyPatch) -> None:
    """One shared call per level with both kernels; outputs equal torchvision's per-conv path."""
    head = _head()
    feats = [torch.randn(1, 16, 12, 10), torch.randn(1, 16, 6, 5)]
    calls = []
    original = deform.deform_conv3x3_gather_shared
    monkeypatch.setattr(
        deform, "deform_conv3x3_gather_shared", lambda xs, o, ks, g: calls.append(len(ks)) or original(xs, o, ks, g)
    )
    with torch.no_grad():
        shared = head(feats)
    assert calls == [2, 2]
    monkeypatch.setattr(SharedOffsetDeform, "forward", lambda self, convs, xs, o: [
        _tv(x, o, conv.weight) for conv, x in zip(convs, xs, strict=True)])
    with torch.no_grad():
        separate = head(feats)
    for name in ("cls_logits", "box_refine", "centerness", "box_init"):
        for got, expected in zip(getattr(shared, name), getattr(separate, name), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_shared_module_falls_back_to_each_conv_while_tracing() -> None:
    """Export traces each conv's own (grid-sample) forward: same values as the shared path."""
    head = _head().requires_grad_(False)
    x = torch.randn(1, 16, 6, 5)
    offset = torch.randn(1, 72, 6, 5) * 2
    convs = (head.cls_deform, head.reg_deform)
    with torch.no_grad():
        shared = head.shared_deform(convs, (x, x * 2), offset)
        traced = torch.jit.trace(lambda a, o: tuple(head.shared_deform(convs, (a, a * 2), o)), (x, offset))
        assert "grid_sampler" in str(traced.graph)
        for got, expected in zip(traced(x, offset), shared, strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
