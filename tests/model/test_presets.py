"""Presets, build_model and the ModelConfig (validation, JSON round trip)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError
from fsanet_geo.model import ModelConfig, build_model, list_presets, preset_config
from fsanet_geo.model.backbone import ResNetBackbone, SwinBackbone
from fsanet_geo.model.head import AlignHead, FCOSHead
from fsanet_geo.model.neck import AlignFPN, PlainFPN

EXPECTED = {
    "fsanet_r50": ("resnet50", AlignFPN, AlignHead, 256),
    "fsanet_swin_t": ("swin_t", AlignFPN, AlignHead, 256),
    "fcos_r50": ("resnet50", PlainFPN, FCOSHead, 256),
    "fsanet_r18_lite": ("resnet18", AlignFPN, AlignHead, 128),
    "fcos_r18_lite": ("resnet18", PlainFPN, FCOSHead, 128),
    "fcos_fa2m_r18_lite": ("resnet18", AlignFPN, FCOSHead, 128),
    "fcos_sagh_r18_lite": ("resnet18", PlainFPN, AlignHead, 128),
    "fsanet_r18_tiny": ("resnet18", AlignFPN, AlignHead, 96),
    "fcos_r18_tiny": ("resnet18", PlainFPN, FCOSHead, 96),
    "fcos_fa2m_r18_tiny": ("resnet18", AlignFPN, FCOSHead, 96),
    "fcos_sagh_r18_tiny": ("resnet18", PlainFPN, AlignHead, 96),
    "fsanet_r18_medium": ("resnet18", AlignFPN, AlignHead, 96),
}


def test_tiny_preset_uses_p2_to_p4_and_trainable_batchnorm() -> None:
    model = build_model("fsanet_r18_tiny")
    assert model.config.strides == (4, 8, 16)
    assert model.backbone.out_channels == (64, 128, 256) and model.backbone.layer4 is None
    assert isinstance(model.backbone.bn1, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in model.backbone.parameters())
    model.eval()
    with torch.inference_mode():
        features = model.backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(16, 24), (8, 12), (4, 6)]
    with torch.inference_mode():
        (out,) = model(torch.zeros(1, 3, 61, 90))
    assert out["boxes"].shape[1] == 4


def test_medium_preset_uses_p3_to_p5_and_trainable_batchnorm() -> None:
    model = build_model("fsanet_r18_medium")
    assert model.config.strides == (8, 16, 32) and model.config.regress_ranges[0] == (-1.0, 64.0)
    assert model.backbone.out_channels == (128, 256, 512) and model.backbone.layer4 is not None
    assert isinstance(model.backbone.bn1, torch.nn.BatchNorm2d)
    assert all(p.requires_grad for p in model.backbone.parameters())
    assert not model.config.nearest_fallback  # 16-100 px objects have points of their own
    model.eval()
    with torch.inference_mode():
        features = model.backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape[-2:]) for f in features] == [(8, 12), (4, 6), (2, 3)]


def test_swin_rejects_p2_strides() -> None:
    with pytest.raises(ConfigError, match="swin_t"):
        preset_config("fsanet_swin_t", strides=(4, 8, 16), regress_ranges=((-1, 32), (32, 64), (64, 1e8)))


def test_list_presets() -> None:
    assert sorted(list_presets()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_preset_builds(name: str) -> None:
    backbone, neck_cls, head_cls, width = EXPECTED[name]
    model = build_model(name)
    assert model.config.preset == name and model.config.backbone == backbone
    assert isinstance(model.backbone, SwinBackbone if backbone == "swin_t" else ResNetBackbone)
    assert type(model.neck) is neck_cls and type(model.head) is head_cls
    assert model.neck.out_channels == width
    assert model.class_names == list(AITOD_CLASSES)
    if name.endswith("_lite"):  # cheap enough to run here
        model.eval()
        with torch.no_grad():
            dets = model([torch.zeros(3, 45, 77)])
        assert len(dets) == 1


def test_swin_preset_settings() -> None:
    config = preset_config("fsanet_swin_t")
    assert config.drop_path == 0.2 and config.frozen_stages == -1


def test_unknown_preset_lists_the_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'fsanet_r9'") as info:
        build_model("fsanet_r9")
    for name in EXPECTED:
        assert name in str(info.value)


def test_class_names() -> None:
    assert preset_config("fcos_r18_lite", num_classes=3).class_names == ("class_0", "class_1", "class_2")
    assert preset_config("fcos_r18_lite", 2, ["car", "ship"]).class_names == ("car", "ship")
    with pytest.raises(ConfigError, match="3 class names given for num_classes=2"):
        preset_config("fcos_r18_lite", 2, ["a", "b", "c"])
    with pytest.raises(ConfigError, match="positive integer"):
        preset_config("fcos_r18_lite", 0)
    with pytest.raises(ConfigError, match="unique"):
        preset_config("fcos_r18_lite", 2, ["a", "a"])


def test_overrides() -> None:
    config = preset_config("fsanet_r18_lite", in_channels=4, score_thr=0.1, nms="hard")
    assert config.in_channels == 4 and len(config.image_mean) == 4 and len(config.image_std) == 4
    assert config.score_thr == 0.1 and config.nms == "hard"
    with pytest.raises(ConfigError, match="unknown model setting"):
        preset_config("fsanet_r18_lite", widht=3)
    with pytest.raises(ConfigError, match="cannot be overridden"):
        preset_config("fsanet_r18_lite", preset="x")
    with pytest.raises(ConfigError, match="image_mean has 3 values but in_channels=4"):
        preset_config("fsanet_r18_lite", in_channels=4, image_mean=(1.0, 2.0, 3.0), image_std=(1.0,) * 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backbone": "vgg16"}, "unknown backbone 'vgg16'"),
        ({"neck": "bifpn"}, "unknown neck"),
        ({"nms": "soft"}, "unknown nms"),
        ({"neck_channels": 100}, "not divisible by norm_groups"),
        ({"image_std": (1.0, 0.0, 1.0)}, "image_std must be positive"),
        ({"regress_ranges": ((-1, 64), (64, 128))}, "one \\(low, high\\) pair per level"),
        ({"regress_ranges": ((-1, 64), (128, 64), (128, 1e8))}, "low < high"),
        ({"strides": (2, 4, 8)}, "strides must be"),
        ({"backbone_norm": "gn"}, "backbone_norm"),
        ({"score_thr": 1.5}, "score_thr"),
        ({"input_size": 0}, "input_size"),
    ],
)
def test_config_validation(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig().replace(**changes)


@settings(max_examples=30, deadline=None)
@given(
    preset=st.sampled_from(sorted(EXPECTED)),
    num_classes=st.integers(1, 12),
    in_channels=st.integers(1, 6),
    score_thr=st.floats(0.0, 0.9),
    nms=st.sampled_from(["hard", "soft_linear", "soft_gaussian"]),
)
def test_config_json_round_trip(preset: str, num_classes: int, in_channels: int, score_thr: float, nms: str) -> None:
    config = preset_config(preset, num_classes, in_channels=in_channels, score_thr=score_thr, nms=nms)
    text = json.dumps(config.to_dict(), allow_nan=False)
    assert ModelConfig.from_dict(json.loads(text)) == config


def test_from_dict_rejects_unknown_fields() -> None:
    data = ModelConfig().to_dict()
    data["colour"] = "red"
    with pytest.raises(ConfigError, match="unknown model config field\\(s\\): colour"):
        ModelConfig.from_dict(data)


def test_describe_presets_counts_match_real_models() -> None:
    from fsanet_geo.model.presets import count_parameters, describe_presets

    rows = {r.name: r for r in describe_presets()}
    assert set(rows) == set(EXPECTED)
    assert rows["fsanet_r18_lite"].parameters == count_parameters(build_model("fsanet_r18_lite"))
    assert rows["fcos_r50"].parameters == count_parameters(build_model("fcos_r50"))
    assert rows["fsanet_r50"].parameters > rows["fcos_r50"].parameters  # FA2M + SAGH add weights


def test_cli_model_presets() -> None:
    from typer.testing import CliRunner

    from fsanet_cli.main import app

    result = CliRunner().invoke(app, ["model", "presets", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list_presets()
    assert all(r["parameters"] > 1_000_000 for r in rows)
    table = CliRunner().invoke(app, ["model", "presets"])
    assert table.exit_code == 0 and "fcos_sagh_r18_lite" in table.stdout


def test_only_the_tiny_presets_use_the_nearest_point_fallback_and_per_object_centerness() -> None:
    for name in list_presets():
        config = preset_config(name)
        assert config.nearest_fallback == name.endswith("_tiny"), name
        assert config.centerness_per_object == name.endswith("_tiny"), name
