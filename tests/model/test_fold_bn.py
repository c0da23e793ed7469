"""BatchNorm folded into the convs: same outputs (1e-5), never saved, used for inference loads."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import build_model, save_checkpoint
from fsanet_geo.model.files.checkpoint import load_inference_model
from fsanet_geo.model.files.fold_bn import fold_batchnorm, is_folded


def _randomise_batchnorms(model: nn.Module, seed: int = 0) -> int:
    """Give every BN non-trivial statistics and affine parameters; returns their count."""
    gen = torch.Generator().manual_seed(seed)
    count = 0
    for m in model.modules():
        if isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)):
            n = m.running_mean.numel()
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.2)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
            count += 1
    return count


@pytest.mark.parametrize(
    ("preset", "batchnorms"),
    [("fsanet_r18_tiny", 15), ("fcos_r18_lite", 20)],  # trainable BN to C4; frozen BN to C5
)
def test_folded_equals_unfolded(preset: str, batchnorms: int) -> None:
    """In float64 (so float32 rounding through 15-20 layers does not hide a wrong formula)."""
    torch.manual_seed(0)
    model = build_model(preset, num_classes=3).eval()
    assert _randomise_batchnorms(model) == batchnorms
    model.double()
    batch = torch.randn(2, 3, 96, 64, dtype=torch.float64)
    with torch.inference_mode():
        before = model.backbone(batch)
        head_before = model.forward_features(batch)
    assert fold_batchnorm(model) == batchnorms
    assert is_folded(model)
    assert not any(isinstance(m, (FrozenBatchNorm2d, nn.BatchNorm2d)) for m in model.modules())
    with torch.inference_mode():
        after = model.backbone(batch)
        head_after = model.forward_features(batch)
    for a, b in zip(after, before, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(head_after.cls_logits + head_after.box_refine, head_before.cls_logits + head_before.box_refine,
                    strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bn_type", [FrozenBatchNorm2d, nn.BatchNorm2d])
@pytest.mark.parametrize(("stride", "groups", "bias"), [(1, 1, False), (2, 2, True)])
def test_one_pair_float32(bn_type: type, stride: int, groups: int, bias: bool) -> None:
    """conv -> BN and the folded conv agree within 1e-5 in float32."""
    net = nn.Sequential(nn.Conv2d(4, 6, 3, stride=stride, padding=1, groups=groups, bias=bias), bn_type(6)).eval()
    _randomise_batchnorms(net, seed=3)
    x = torch.randn(2, 4, 9, 7)
    with torch.inference_mode():
        expected = net(x)
    assert fold_batchnorm(net) == 1
    assert isinstance(net[1], nn.Identity) and net[0].bias is not None
    with torch.inference_mode():
        torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=1e-5)


def test_trainable_batchnorm_in_training_mode_is_not_folded() -> None:
    model = build_model("fsanet_r18_tiny", num_classes=2).train()
    assert fold_batchnorm(model) == 0
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 15


def test_folded_model_is_never_saved(tmp_path) -> None:
    model = build_model("fcos_r18_tiny", num_classes=2).eval()
    fold_batchnorm(model)
    with pytest.raises(ConfigError, match="BatchNorm folded"):
        save_checkpoint(model, tmp_path / "folded.safetensors")
    assert not (tmp_path / "folded.safetensors").exists()


def test_inference_load_folds_and_detects_the_same(tmp_path) -> None:
    torch.manual_seed(1)
    model = build_model("fsanet_r18_tiny", num_classes=2, score_thr=0.0).eval()
    _randomise_batchnorms(model, seed=2)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    loaded = load_inference_model(path)
    assert is_folded(loaded) and not loaded.training
    tile = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)
    with torch.inference_mode():
        expected, got = model([tile])[0], loaded([tile])[0]
    assert len(got["scores"]) == len(expected["scores"]) > 0
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-5, rtol=1e-5)
