"""Named model presets and :func:`build_model`.

- ``fsanet_r50``: the paper (ResNet-50, AlignFPN, SAGH, 256 channels, 3 tower convs).
- ``fsanet_swin_t``: Swin-T backbone (real widths 192/384/768), drop path 0.2.
- ``fcos_r50``: the FCOS baseline (plain FPN, plain FCOS head) on the same P3-P5 levels.
- ``*_r18_lite``: CPU-friendly ResNet-18 variants with 128-channel neck/head and 2 tower
  convs; the four ablation variants (FCOS, FCOS+FA2M, FCOS+SAGH, FSANet) share them.
- ``*_r18_tiny``: P2-P4 (strides 4/8/16) from C2-C4 of a ResNet-18 with trainable
  BatchNorm, width 96: trains from scratch on a CPU; ``fsanet_r18_tiny`` is the demo model,
  and the four ablation variants exist on this body too.
- ``fsanet_r18_medium``: the tiny preset's sibling for larger objects (16-100 px: trees,
  buildings, boats at 10 cm): P3-P5 (strides 8/16/32) from C3-C5 of a ResNet-18 with
  trainable BatchNorm, width 96: also trains from scratch on a CPU.

Presets whose backbone keeps frozen BatchNorm (:data:`FROZEN_NORM`) need ImageNet or
fine-tuning weights to train: their normalisation cannot learn from random init
(:func:`check_trainable_from_scratch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.config import INF_RANGE, ModelConfig, default_mean_std
from fsanet_geo.model.detector import FSANet

_LITE: dict[str, Any] = {
    "backbone": "resnet18",
    "neck_channels": 128,
    "head_channels": 128,
    "num_tower_convs": 2,
}

# P2-P4 (strides 4/8/16) from C2-C4 of a ResNet-18 with trainable BatchNorm: trains from
# scratch on a CPU and gives objects of 4-8 px a positive point; the nearest-point fallback
# gives one to the 2-3 px objects that fall between the stride-4 points, and per-object
# centerness lets those off-centre points learn a full score.
_TINY: dict[str, Any] = {
    "backbone": "resnet18",
    "strides": (4, 8, 16),
    "regress_ranges": ((-1.0, 32.0), (32.0, 64.0), (64.0, INF_RANGE)),
    "neck_channels": 96,
    "head_channels": 96,
    "num_tower_convs": 2,
    "frozen_stages": -1,
    "backbone_norm": "bn",
    "nearest_fallback": True,
    "centerness_per_object": True,
}

# C3-C5 (strides 8/16/32) of a ResNet-18 with trainable BatchNorm, width 96: the tiny
# preset's body for objects of 16-100 px, whose FCOS ranges (up to 64 px on P3, 64-128 on P4,
# beyond on P5) give every such object several positive points without any fallback.
_MEDIUM: dict[str, Any] = {
    "backbone": "resnet18",
    "neck_channels": 96,
    "head_channels": 96,
    "num_tower_convs": 2,
    "frozen_stages": -1,
    "backbone_norm": "bn",
}

PRESETS: dict[str, dict[str, Any]] = {
    "fsanet_r50": {"backbone": "resnet50", "neck": "align", "head": "align"},
    "fsanet_swin_t": {
        "backbone": "swin_t",
        "neck": "align",
        "head": "align",
        "frozen_stages": -1,
        "drop_path": 0.2,
    },
    "fcos_r50": {"backbone": "resnet50", "neck": "fpn", "head": "fcos"},
    "fsanet_r18_lite": {**_LITE, "neck": "align", "head": "align"},
    "fcos_r18_lite": {**_LITE, "neck": "fpn", "head": "fcos"},
    "fcos_fa2m_r18_lite": {**_LITE, "neck": "align", "head": "fcos"},
    "fcos_sagh_r18_lite": {**_LITE, "neck": "fpn", "head": "align"},
    "fsanet_r18_tiny": {**_TINY, "neck": "align", "head": "align"},
    "fcos_r18_tiny": {**_TINY, "neck": "fpn", "head": "fcos"},
    "fcos_fa2m_r18_tiny": {**_TINY, "neck": "align", "head": "fcos"},
    "fcos_sagh_r18_tiny": {**_TINY, "neck": "fpn", "head": "align"},
    "fsanet_r18_medium": {**_MEDIUM, "neck": "align", "head": "align"},
}

PRESET_DESCRIPTIONS: dict[str, str] = {
    "fsanet_r50": "FSANet, ResNet-50 (the paper)",
    "fsanet_swin_t": "FSANet, Swin-T",
    "fcos_r50": "FCOS baseline, ResNet-50",
    "fsanet_r18_lite": "FSANet, ResNet-18, width 128 (CPU)",
    "fcos_r18_lite": "ablation: FCOS, ResNet-18 lite",
    "fcos_fa2m_r18_lite": "ablation: FCOS + FA2M, ResNet-18 lite",
    "fcos_sagh_r18_lite": "ablation: FCOS + SAGH, ResNet-18 lite",
    "fsanet_r18_tiny": "FSANet, ResNet-18 to C4, P2-P4 (strides 4/8/16), width 96, trainable BN: "
    "for training from scratch on CPU and for 2-8 px objects (the demo model)",
    "fcos_r18_tiny": "ablation: FCOS, ResNet-18 tiny (P2-P4)",
    "fcos_fa2m_r18_tiny": "ablation: FCOS + FA2M, ResNet-18 tiny (P2-P4)",
    "fcos_sagh_r18_tiny": "ablation: FCOS + SAGH, ResNet-18 tiny (P2-P4)",
    "fsanet_r18_medium": "FSANet, ResNet-18, P3-P5 (strides 8/16/32), width 96, trainable BN: "
    "for training from scratch on CPU and for 16-100 px objects (trees, buildings, boats at 10 cm)",
}

FROM_SCRATCH_PRESETS: tuple[str, ...] = ("fsanet_r18_tiny", "fsanet_r18_medium")
"""Presets with trainable normalisation throughout, made to train from random init."""


def check_trainable_from_scratch(config: ModelConfig) -> None:
    """Refuse random-init training of a ResNet with frozen BatchNorm (:class:`ConfigError`).

    Frozen BatchNorm keeps the statistics of the weights it starts from; from random init
    they are meaningless and the model does not learn. Swin (LayerNorm) is not concerned.
    """
    if config.backbone.startswith("resnet") and config.backbone_norm == "frozen_bn":
        raise ConfigError(
            f"{config.preset} keeps its backbone's BatchNorm frozen and cannot train from random init: "
            f"give --pretrained-backbone imagenet (or a weights file), --init-weights, or use a "
            f"from-scratch preset ({', '.join(FROM_SCRATCH_PRESETS)})"
        )


def list_presets() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return list(PRESETS)


def default_class_names(num_classes: int) -> list[str]:
    """AI-TOD's names for 8 classes, ``class_0 .. class_{K-1}`` otherwise."""
    from fsanet_geo.data.classes import AITOD_CLASSES

    if num_classes == len(AITOD_CLASSES):
        return list(AITOD_CLASSES)
    return [f"class_{i}" for i in range(num_classes)]


def preset_config(
    name: str,
    num_classes: int = 8,
    class_names: Sequence[str] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """The :class:`ModelConfig` of a preset, with ``overrides`` of any config field.

    When ``in_channels`` is overridden but not ``image_mean``/``image_std``, the
    normalisation defaults to ImageNet's (3 bands) or its band average replicated.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    names = list(class_names) if class_names is not None else default_class_names(num_classes)
    if len(names) != num_classes:
        raise ConfigError(f"{len(names)} class names given for num_classes={num_classes}")
    fields: dict[str, Any] = {**PRESETS[name], **overrides}
    in_channels = int(fields.get("in_channels", 3))
    mean, std = default_mean_std(in_channels)
    fields.setdefault("image_mean", mean)
    fields.setdefault("image_std", std)
    for reserved in ("preset", "num_classes", "class_names"):
        if reserved in overrides:
            raise ConfigError(f"{reserved} cannot be overridden here; pass it as an argument")
    return ModelConfig(preset=name, num_classes=num_classes, class_names=tuple(names)).replace(**fields)


def build_model(
    name: str,
    num_classes: int = 8,
    class_names: list[str] | None = None,
    pretrained_backbone: bool | str = False,
    **overrides: Any,
) -> FSANet:
    """Build a preset detector (random init unless ``pretrained_backbone``).

    Args:
        name: one of :func:`list_presets`.
        num_classes: K (labels 0..K-1).
        class_names: K names; AI-TOD's for K = 8, ``class_i`` otherwise.
        pretrained_backbone: ``True`` for torchvision's ImageNet weights (downloaded once),
            a local weights file path, or ``False`` for random init.
        overrides: any :class:`ModelConfig` field (e.g. ``in_channels=4``, ``score_thr=0.1``).

    Raises:
        ConfigError: unknown preset (the message lists the valid ones) or bad setting.
    """
    config = preset_config(name, num_classes, class_names, **overrides)
    return FSANet(config, pretrained_backbone=pretrained_backbone)


@dataclass(frozen=True)
class PresetInfo:
    """One row of the preset table (``parameters``: total count, trainable or not)."""

    name: str
    description: str
    backbone: str
    neck: str
    head: str
    width: int
    tower_convs: int
    parameters: int


def count_parameters(model: torch.nn.Module) -> int:
    """Total number of parameters (frozen ones included)."""
    return sum(p.numel() for p in model.parameters())


def describe_presets(num_classes: int = 8) -> list[PresetInfo]:
    """Every preset with its architecture and parameter count (built on the meta device,
    so no memory is allocated and no weights are initialised)."""
    rows = []
    for name in PRESETS:
        config = preset_config(name, num_classes)
        with torch.device("meta"):
            parameters = count_parameters(FSANet(config))
        rows.append(
            PresetInfo(
                name=name,
                description=PRESET_DESCRIPTIONS[name],
                backbone=config.backbone,
                neck=config.neck,
                head=config.head,
                width=config.neck_channels,
                tower_convs=config.num_tower_convs,
                parameters=parameters,
            )
        )
    return rows
