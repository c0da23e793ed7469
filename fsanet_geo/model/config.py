"""The model configuration: everything needed to rebuild a detector (and carried by checkpoints).

The configuration is a plain dataclass of JSON-safe values (strings, numbers, lists), so
``ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg``. The "infinite"
upper regress range of the last level is stored as the finite number ``1e8`` (pixels).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fsanet_geo.config_fields import check_known_fields
from fsanet_geo.errors import ConfigError

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "swin_t")
NECKS: tuple[str, ...] = ("align", "fpn")
HEADS: tuple[str, ...] = ("align", "fcos")
NMS_KINDS: tuple[str, ...] = ("hard", "soft_linear", "soft_gaussian")
BACKBONE_NORMS: tuple[str, ...] = ("frozen_bn", "bn")
"""``frozen_bn``: BatchNorm frozen, eval mode (the paper, with ImageNet weights); ``bn``:
trainable BatchNorm, for training from scratch (no pretrained weights)."""
STRIDE_SETS: tuple[tuple[int, ...], ...] = ((8, 16, 32), (4, 8, 16))
"""(8, 16, 32): P3-P5 from C3-C5 (the paper). (4, 8, 16): P2-P4 from C2-C4, a finer grid for
objects of 2-8 px, at the cost of a 4x larger first level."""

IMAGENET_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)
INF_RANGE: float = 1e8
"""Upper bound (pixels) standing for "infinity" in regress ranges (JSON has no inf)."""


def default_mean_std(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """ImageNet mean/std (0-255 units) for 3 bands; their averages replicated otherwise."""
    if in_channels == 3:
        return IMAGENET_MEAN, IMAGENET_STD
    mean = sum(IMAGENET_MEAN) / 3.0
    std = sum(IMAGENET_STD) / 3.0
    return (mean,) * in_channels, (std,) * in_channels


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, input normalisation, training-target and inference settings.

    Units: ``image_mean``/``image_std`` are in input units (0-255 for 8-bit bands);
    ``input_size``, ``strides`` and ``regress_ranges`` are in input pixels.
    """

    preset: str = "custom"
    backbone: str = "resnet50"
    neck: str = "align"
    head: str = "align"
    num_classes: int = 8
    class_names: tuple[str, ...] = ()
    in_channels: int = 3
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD
    input_size: int = 800
    neck_channels: int = 256
    head_channels: int = 256
    num_tower_convs: int = 3
    norm_groups: int = 32
    deform_groups: int = 4
    frozen_stages: int = 1
    backbone_norm: str = "frozen_bn"
    drop_path: float = 0.0
    strides: tuple[int, ...] = (8, 16, 32)
    regress_ranges: tuple[tuple[float, float], ...] = ((-1.0, 64.0), (64.0, 128.0), (128.0, INF_RANGE))
    # losses
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    weight_cls: float = 1.0
    weight_box_init: float = 0.2
    weight_box_refine: float = 1.0
    weight_centerness: float = 1.0
    # A GT that no point claims (2-3 px objects between the points of a level) takes the
    # nearest free point near its centre (targets.assign_targets). Off in the paper's recipe.
    nearest_fallback: bool = False
    # Centerness targets (and so box-loss weights) divided per object by its best point's,
    # so a 2-4 px object whose points all sit off its centre still gets a 1 to learn
    # (targets.normalise_per_object). Off in the paper's recipe.
    centerness_per_object: bool = False
    # inference
    score_thr: float = 0.05
    # Calibrated cut on the final score, one per class (training's validation: the F1-best
    # threshold at IoU 0.5); None: ``score_thr`` alone. ``score_thr`` is then their minimum.
    class_score_thr: tuple[float, ...] | None = None
    nms_pre: int = 3000
    nms: str = "soft_linear"
    nms_iou: float = 0.5
    soft_sigma: float = 0.5
    min_score: float = 1e-3
    max_per_img: int = 1500
    use_centerness: bool = True

    def __post_init__(self) -> None:
        # Normalise sequences to tuples (from JSON lists) before validating.
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))
        object.__setattr__(self, "strides", tuple(int(s) for s in self.strides))
        if self.class_score_thr is not None:
            object.__setattr__(self, "class_score_thr", tuple(float(v) for v in self.class_score_thr))
        object.__setattr__(
            self,
            "regress_ranges",
            tuple((float(lo), float(hi)) for lo, hi in self.regress_ranges),
        )
        if not self.class_names:
            object.__setattr__(
                self, "class_names", tuple(f"class_{i}" for i in range(self.num_classes))
            )
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        _choice("backbone", self.backbone, BACKBONES)
        _choice("neck", self.neck, NECKS)
        _choice("head", self.head, HEADS)
        _choice("nms", self.nms, NMS_KINDS)
        _positive_int("num_classes", self.num_classes)
        _positive_int("in_channels", self.in_channels)
        _positive_int("input_size", self.input_size)
        _positive_int("neck_channels", self.neck_channels)
        _positive_int("head_channels", self.head_channels)
        _positive_int("norm_groups", self.norm_groups)
        _positive_int("deform_groups", self.deform_groups)
        _positive_int("nms_pre", self.nms_pre)
        _positive_int("max_per_img", self.max_per_img)
        if self.num_tower_convs < 0:
            raise ConfigError(f"num_tower_convs must be >= 0, got {self.num_tower_convs}")
        if len(self.class_names) != self.num_classes:
            raise ConfigError(
                f"{len(self.class_names)} class names given for num_classes={self.num_classes}"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ConfigError(f"class names must be unique, got {list(self.class_names)}")
        for name, values in (("image_mean", self.image_mean), ("image_std", self.image_std)):
            if len(values) != self.in_channels:
                raise ConfigError(
                    f"{name} has {len(values)} values but in_channels={self.in_channels}"
                )
            if not all(math.isfinite(v) for v in values):
                raise ConfigError(f"{name} must be finite, got {list(values)}")
        if any(v <= 0 for v in self.image_std):
            raise ConfigError(f"image_std must be positive, got {list(self.image_std)}")
        for name, width in (("neck_channels", self.neck_channels), ("head_channels", self.head_channels)):
            if width % self.norm_groups:
                raise ConfigError(
                    f"{name}={width} is not divisible by norm_groups={self.norm_groups}"
                )
        if self.head_channels % self.deform_groups:
            raise ConfigError(
                f"head_channels={self.head_channels} is not divisible by "
                f"deform_groups={self.deform_groups}"
            )
        if self.strides not in STRIDE_SETS:
            raise ConfigError(
                f"strides must be (8, 16, 32) (levels P3-P5) or (4, 8, 16) (P2-P4, ResNet "
                f"only), got {self.strides}"
            )
        if self.strides != (8, 16, 32) and self.backbone == "swin_t":
            raise ConfigError(f"swin_t gives strides (8, 16, 32) only, got {self.strides}")
        _choice("backbone_norm", self.backbone_norm, BACKBONE_NORMS)
        if len(self.regress_ranges) != len(self.strides):
            raise ConfigError(
                f"regress_ranges needs one (low, high) pair per level ({len(self.strides)}), "
                f"got {len(self.regress_ranges)}"
            )
        for lo, hi in self.regress_ranges:
            if not lo < hi:
                raise ConfigError(f"regress range ({lo}, {hi}) must have low < high")
        if not 0.0 <= self.drop_path < 1.0:
            raise ConfigError(f"drop_path must be in [0, 1), got {self.drop_path}")
        if self.frozen_stages not in (-1, 0, 1, 2, 3, 4):
            raise ConfigError(f"frozen_stages must be -1..4, got {self.frozen_stages}")
        for name in ("score_thr", "min_score"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.class_score_thr is not None:
            if len(self.class_score_thr) != self.num_classes:
                raise ConfigError(f"class_score_thr needs one threshold per class ({self.num_classes}), "
                                  f"got {len(self.class_score_thr)}")
            if not all(0.0 <= v < 1.0 for v in self.class_score_thr):
                raise ConfigError(f"class_score_thr values must be in [0, 1), got {list(self.class_score_thr)}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.soft_sigma <= 0:
            raise ConfigError(f"soft_sigma must be positive, got {self.soft_sigma}")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (lists instead of tuples)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "regress_ranges":
                value = [[lo, hi] for lo, hi in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a model config must be a mapping, got {type(data).__name__}")
        check_known_fields(cls, data, "model config field(s)")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid model config: {exc}") from exc

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated); unknown fields raise ConfigError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"unknown model setting(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: str, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {name} {value!r}: choose one of {', '.join(valid)}")


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
