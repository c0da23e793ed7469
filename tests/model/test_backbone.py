"""Backbones: output shapes, frozen stages and BatchNorm, band adaptation, weight files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torchvision import models
from torchvision.ops import FrozenBatchNorm2d

from fsanet_geo.errors import CheckpointError
from fsanet_geo.model.backbone import (
    ResNetBackbone,
    SwinBackbone,
    adapt_first_conv_weight,
    build_backbone,
    load_weights_file,
)


@pytest.mark.parametrize(
    ("name", "channels"),
    [("resnet18", (128, 256, 512)), ("resnet34", (128, 256, 512)), ("resnet50", (512, 1024, 2048))],
)
def test_resnet_outputs_strides_8_16_32(name: str, channels: tuple[int, int, int]) -> None:
    backbone = ResNetBackbone(name)
    assert backbone.out_channels == channels
    outs = backbone(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (2, channels[0], 8, 12),
        (2, channels[1], 4, 6),
        (2, channels[2], 2, 3),
    ]


def test_resnet101_builds() -> None:
    assert build_backbone("resnet101").out_channels == (512, 1024, 2048)


def test_stem_and_stage1_frozen_and_batchnorm_frozen() -> None:
    backbone = ResNetBackbone("resnet18")
    for name, param in backbone.named_parameters():
        frozen = name.startswith(("conv1.", "bn1.", "layer1."))
        assert param.requires_grad is not frozen, name
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules()) == 20
    # FrozenBatchNorm2d keeps its statistics as non-trainable buffers.
    assert "bn1.running_mean" in dict(backbone.named_buffers())


def test_frozen_batchnorm_stays_frozen_in_train_mode() -> None:
    backbone = ResNetBackbone("resnet18")
    with torch.no_grad():  # non-trivial statistics, as from ImageNet weights
        for m in backbone.modules():
            if isinstance(m, FrozenBatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    x = torch.randn(2, 3, 64, 64)
    backbone.eval()
    with torch.no_grad():
        eval_out = backbone(x)
    backbone.train()
    train_out = backbone(x)
    sum(o.sum() for o in train_out).backward()
    for a, b in zip(train_out, eval_out):
        torch.testing.assert_close(a.detach(), b)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert backbone.layer1[0].conv1.weight.grad is None
    assert backbone.layer2[0].conv1.weight.grad is not None


@pytest.mark.parametrize(("frozen", "trainable_first"), [(-1, "conv1."), (0, "layer1."), (2, "layer3.")])
def test_frozen_stages_setting(frozen: int, trainable_first: str) -> None:
    backbone = ResNetBackbone("resnet18", frozen_stages=frozen)
    first = next(n for n, p in backbone.named_parameters() if p.requires_grad)
    assert first.startswith(trainable_first)


def test_adapt_first_conv_weight_hand_values() -> None:
    weight = torch.tensor([[[[1.0]], [[2.0]], [[6.0]]]])  # [1, 3, 1, 1]
    assert adapt_first_conv_weight(weight, 3) is weight
    torch.testing.assert_close(adapt_first_conv_weight(weight, 1), torch.tensor([[[[9.0]]]]))
    torch.testing.assert_close(adapt_first_conv_weight(weight, 4), torch.full((1, 4, 1, 1), 2.25))


@pytest.mark.parametrize("bands", [1, 4])
def test_other_band_counts(bands: int) -> None:
    backbone = ResNetBackbone("resnet18", in_channels=bands)
    assert backbone.conv1.in_channels == bands
    assert [o.shape[1] for o in backbone(torch.randn(1, bands, 64, 64))] == [128, 256, 512]
    swin = SwinBackbone(in_channels=bands)
    assert [o.shape[1] for o in swin(torch.randn(1, bands, 64, 64))] == [192, 384, 768]


def _torchvision_resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    return models.resnet18().state_dict()  # includes fc.* and num_batches_tracked


def test_local_weights_file_rgb_and_grey_mapping(tmp_path) -> None:
    state = _torchvision_resnet18_state()
    path = tmp_path / "r18.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    rgb = ResNetBackbone("resnet18", pretrained=str(path))
    assert torch.equal(rgb.conv1.weight, state["conv1.weight"])
    assert torch.equal(rgb.layer3[1].bn2.running_var, state["layer3.1.bn2.running_var"])
    four = ResNetBackbone("resnet18", in_channels=4, pretrained=str(path))
    expected = state["conv1.weight"].mean(dim=1, keepdim=True).expand(-1, 4, -1, -1) * 0.75
    torch.testing.assert_close(four.conv1.weight, expected)
    # A grey image gives the same first-layer response with 3 or 4 bands.
    grey3, grey4 = torch.full((1, 3, 16, 16), 0.7), torch.full((1, 4, 16, 16), 0.7)
    torch.testing.assert_close(rgb.conv1(grey3)[..., 4:-4, 4:-4], four.conv1(grey4)[..., 4:-4, 4:-4])


def test_local_torch_file_is_read_weights_only(tmp_path) -> None:
    state = _torchvision_resnet18_state()
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    backbone = ResNetBackbone("resnet18", pretrained=path.as_posix())
    assert torch.equal(backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_bad_weights_files(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        ResNetBackbone("resnet18", pretrained=str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file")
    with pytest.raises(CheckpointError, match="junk.pth is not a safetensors or torch state-dict file"):
        ResNetBackbone("resnet18", pretrained=str(junk))
    wrong = tmp_path / "r50.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}, str(wrong))
    with pytest.raises(CheckpointError, match="do not fit"):
        ResNetBackbone("resnet18", pretrained=str(wrong))


def test_unreadable_weights_files_are_named_in_words(tmp_path) -> None:
    """A text file used to give 'cannot read backbone weights afile: 105' (the unpickler's bare key)."""
    text = tmp_path / "afile"
    text.write_text("hello world\n")
    with pytest.raises(CheckpointError) as info:
        load_weights_file(text)
    assert str(info.value) == (
        f"{text} is not a safetensors or torch state-dict file (torch.load cannot read it: not a weights file)"
    )
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        load_weights_file(empty)
    assert str(info.value) == f"{empty} is not a safetensors or torch state-dict file (the file is empty)"
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match=r"short.safetensors is not a .*\(safetensors: .*header"):
        load_weights_file(short)


def test_swin_t_real_widths_and_strides() -> None:
    swin = SwinBackbone(drop_path=0.2)
    assert swin.out_channels == (192, 384, 768)
    swin.eval()
    outs = swin(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 192, 8, 12), (2, 384, 4, 6), (2, 768, 2, 3)]
    assert all(o.is_contiguous() for o in outs)
    frozen = SwinBackbone(frozen_stages=1)
    assert not any(p.requires_grad for p in frozen.features[1].parameters())
    assert all(p.requires_grad for p in frozen.features[3].parameters())


def test_unreachable_imagenet_weights_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(CheckpointError, match="could not get torchvision's .*ImageNet weights.*local weights file"):
        ResNetBackbone("resnet18", pretrained=True)


def test_imagenet_weights_api_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _torchvision_resnet18_state()
    seen = []

    def fake(self, *args, **kwargs):
        seen.append(self)
        return state

    monkeypatch.setattr(models.WeightsEnum, "get_state_dict", fake)
    backbone = ResNetBackbone("resnet18", in_channels=1, pretrained=True)
    assert seen == [models.ResNet18_Weights.IMAGENET1K_V1]
    torch.testing.assert_close(backbone.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
