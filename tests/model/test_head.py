"""Heads: SAGH (AlignHead) wiring and inits, plain FCOS head."""

from __future__ import annotations

import math

import torch
from torch import nn

from fsanet_geo.model.head import AlignHead, FCOSHead


def _features(batch: int = 2, channels: int = 32) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(batch, channels, 9, 13), torch.randn(batch, channels, 5, 7), torch.randn(batch, channels, 3, 4)]


def _head(**kwargs: int) -> AlignHead:
    torch.manual_seed(1)
    return AlignHead(32, num_classes=5, feat_channels=32, num_convs=2, norm_groups=8, **kwargs)


def test_align_head_shapes() -> None:
    out = _head()(_features())
    assert out.sizes == [(9, 13), (5, 7), (3, 4)]
    for level, (h, w) in enumerate(out.sizes):
        assert out.cls_logits[level].shape == (2, 5, h, w)
        assert out.box_refine[level].shape == (2, 4, h, w)
        assert out.centerness[level].shape == (2, 1, h, w)
        assert out.box_init is not None and out.box_init[level].shape == (2, 4, h, w)
        assert (out.box_init[level] > 0).all()


def test_align_head_structure_and_inits() -> None:
    head = _head(deform_groups=4)
    assert tuple(head.offset.weight.shape) == (72, 4, 1, 1) and head.offset.bias is None
    assert head.cls_deform.deform_groups == 4 and tuple(head.cls_deform.weight.shape) == (32, 32, 3, 3)
    assert head.reg_deform is not head.cls_deform
    torch.testing.assert_close(head.cls_logits.bias, torch.full((5,), -math.log(99.0)))
    for conv in (head.box_init, head.box_refine, head.centerness):
        assert torch.count_nonzero(conv.bias) == 0
    for weight in (head.cls_tower[0].weight, head.cls_deform.weight, head.offset.weight):
        assert abs(float(weight.detach().std()) - 0.01) < 0.002
    tower_convs = [m for m in head.reg_tower if isinstance(m, nn.Conv2d)]
    assert len(tower_convs) == 2 and all(c.bias is None for c in tower_convs)
    assert len(head.scales) == 3


def test_coarse_and_refined_boxes_by_hand() -> None:
    """box_init = exp(scale * init); box_refine = scale * refine_conv + box_init (no exp)."""
    head = _head()
    with torch.no_grad():
        head.box_init.weight.zero_()
        head.box_init.bias.copy_(torch.tensor([0.5, 1.0, 1.5, 2.0]))
        head.box_refine.weight.zero_()
        head.box_refine.bias.copy_(torch.tensor([1.0, -1.0, 2.0, 0.0]))
        head.scales[1].scale.fill_(2.0)
    out = head(_features())
    init = torch.exp(2.0 * torch.tensor([0.5, 1.0, 1.5, 2.0]))
    assert out.box_init is not None
    torch.testing.assert_close(out.box_init[1][0, :, 3, 4], init)
    torch.testing.assert_close(out.box_refine[1][1, :, 0, 0], init + 2.0 * torch.tensor([1.0, -1.0, 2.0, 0.0]))
    torch.testing.assert_close(out.box_init[0][0, :, 0, 0], torch.exp(torch.tensor([0.5, 1.0, 1.5, 2.0])))


def test_offsets_come_from_the_raw_init_and_guide_both_branches() -> None:
    head = _head()
    feats = _features()
    captured: dict[str, torch.Tensor] = {}

    def keep(key: str, value: torch.Tensor) -> None:
        captured.setdefault(key, value)

    hooks = [
        head.offset.register_forward_hook(lambda m, inp, out: keep("in", inp[0])),
        head.box_init.register_forward_hook(lambda m, inp, out: keep("raw", out)),
    ]
    head(feats)
    for hook in hooks:
        hook.remove()
    assert torch.equal(captured["in"], captured["raw"])  # pre-scale, pre-exp
    base = head(feats)
    with torch.no_grad():
        head.offset.weight.mul_(100.0)
    moved = head(feats)
    assert not torch.allclose(base.cls_logits[0], moved.cls_logits[0])
    assert not torch.allclose(base.box_refine[0], moved.box_refine[0])


def test_centerness_is_on_the_classification_branch() -> None:
    head = _head()
    feats = _features()
    base = head(feats)
    with torch.no_grad():
        head.reg_deform.weight.normal_()
    changed = head(feats)
    torch.testing.assert_close(changed.centerness[0], base.centerness[0])
    torch.testing.assert_close(changed.cls_logits[0], base.cls_logits[0])
    assert not torch.allclose(changed.box_refine[0], base.box_refine[0])


def test_gradient_reaches_both_stages() -> None:
    head = _head()
    out = head(_features())
    assert out.box_init is not None
    (out.box_refine[0].sum() + out.cls_logits[0].sum()).backward()
    for name in ("box_init", "offset", "cls_deform", "reg_deform", "box_refine", "cls_logits"):
        grad = getattr(head, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert head.cls_tower[0].weight.grad.abs().sum() > 0
    assert head.scales[0].scale.grad is not None


def test_fcos_head() -> None:
    torch.manual_seed(2)
    head = FCOSHead(32, num_classes=3, feat_channels=32, num_convs=2, norm_groups=8)
    feats = _features()
    out = head(feats)
    assert out.box_init is None
    assert [tuple(t.shape) for t in out.box_refine] == [(2, 4, 9, 13), (2, 4, 5, 7), (2, 4, 3, 4)]
    assert all((t > 0).all() for t in out.box_refine)
    with torch.no_grad():
        head.box.weight.zero_()
        head.box.bias.fill_(1.0)
        head.scales[2].scale.fill_(3.0)
    torch.testing.assert_close(head(feats).box_refine[2], torch.full((2, 4, 3, 4), math.exp(3.0)))
    # centerness sits on the regression branch: the cls tower does not change it.
    base = head(feats)
    with torch.no_grad():
        head.cls_tower[0].weight.normal_()
    torch.testing.assert_close(head(feats).centerness[1], base.centerness[1])
    with torch.no_grad():
        head.reg_tower[0].weight.normal_()
    assert not torch.allclose(head(feats).centerness[1], base.centerness[1])
