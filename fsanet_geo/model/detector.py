"""The detector: backbone -> neck -> head, with its own input normalisation and padding.

Dimension letters: B = images, C = bands, (H, W) = image size in pixels, M = GT boxes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.backbone import build_backbone
from fsanet_geo.model.config import ModelConfig
from fsanet_geo.model.head import AlignHead, FCOSHead
from fsanet_geo.model.neck import AlignFPN, PlainFPN
from fsanet_geo.model.outputs import HeadOutputs

SIZE_DIVISOR = 32
"""Inputs are zero-padded (after normalisation) at the bottom/right to multiples of this."""

Images = Sequence[Tensor] | Tensor
Criterion = Callable[[HeadOutputs, list[Tensor], list[dict]], dict[str, Tensor]]
Postprocess = Callable[[HeadOutputs, list[Tensor], list[tuple[int, int]]], list[dict[str, Tensor]]]


def _nms_method(name: str) -> str:
    """Config NMS name (``hard|soft_linear|soft_gaussian``) -> the post-processor's name."""
    from fsanet_geo.ops import nms_rules

    valid = getattr(nms_rules, "NMS_METHODS", ())
    if name in valid:
        return name
    short = name.removeprefix("soft_")
    return short if short in valid else name


def build_neck(config: ModelConfig, in_channels: Sequence[int]) -> AlignFPN | PlainFPN:
    """AlignFPN (``neck="align"``) or the plain FPN (``neck="fpn"``)."""
    if config.neck == "align":
        return AlignFPN(in_channels, config.neck_channels, config.norm_groups)
    return PlainFPN(in_channels, config.neck_channels)


def build_head(config: ModelConfig) -> AlignHead | FCOSHead:
    """SAGH (``head="align"``) or the plain FCOS head (``head="fcos"``)."""
    if config.head == "align":
        return AlignHead(
            config.neck_channels,
            config.num_classes,
            config.head_channels,
            config.num_tower_convs,
            len(config.strides),
            config.norm_groups,
            config.deform_groups,
        )
    return FCOSHead(
        config.neck_channels,
        config.num_classes,
        config.head_channels,
        config.num_tower_convs,
        len(config.strides),
        config.norm_groups,
    )


def build_criterion(config: ModelConfig) -> Criterion:
    """FSANet's criterion for the SAGH head, FCOS's for the plain head."""
    from fsanet_geo.model.losses import FCOSCriterion, FSANetCriterion

    if config.head == "align":
        return FSANetCriterion(
            config.num_classes,
            config.strides,
            config.regress_ranges,
            focal_alpha=config.focal_alpha,
            focal_gamma=config.focal_gamma,
            weight_cls=config.weight_cls,
            weight_box_init=config.weight_box_init,
            weight_box_refine=config.weight_box_refine,
            weight_centerness=config.weight_centerness,
            nearest_fallback=config.nearest_fallback,
            centerness_per_object=config.centerness_per_object,
        )
    return FCOSCriterion(
        config.num_classes,
        config.strides,
        config.regress_ranges,
        focal_alpha=config.focal_alpha,
        focal_gamma=config.focal_gamma,
        weight_cls=config.weight_cls,
        weight_box=config.weight_box_refine,
        weight_centerness=config.weight_centerness,
        nearest_fallback=config.nearest_fallback,
        centerness_per_object=config.centerness_per_object,
    )


def build_postprocessor(config: ModelConfig) -> Postprocess:
    """The post-processor with the config's inference settings."""
    from fsanet_geo.model.postprocess import PostProcessor

    return PostProcessor(
        score_thr=config.score_thr,
        nms_pre=config.nms_pre,
        nms=_nms_method(config.nms),
        nms_iou=config.nms_iou,
        soft_sigma=config.soft_sigma,
        min_score=config.min_score,
        max_per_img=config.max_per_img,
        use_centerness=config.use_centerness,
        class_score_thr=config.class_score_thr,
    )


def set_score_thresholds(model: Any, score_thr: float, class_score_thr: Sequence[float] | None = None) -> None:
    """Give a detector (anything with a ``ModelConfig`` ``config`` and a :class:`PostProcessor`
    ``postprocessor``) new score cuts: ``score_thr`` on the class score before NMS and, when
    given, one cut per class on the final score after it (``score_thr`` should then be their
    minimum, which loses nothing: final score <= class score)."""
    cuts = None if class_score_thr is None else tuple(float(v) for v in class_score_thr)
    config = getattr(model, "config", None)
    if config is not None and dataclasses.is_dataclass(config) and hasattr(config, "class_score_thr"):
        model.config = dataclasses.replace(config, score_thr=float(score_thr), class_score_thr=cuts)
    postprocess = getattr(model, "postprocessor", None)
    if postprocess is not None and hasattr(postprocess, "score_thr"):
        postprocess.score_thr = float(score_thr)
        postprocess.class_score_thr = cuts


class FSANet(nn.Module):
    """FSANet (or an FCOS ablation variant, per ``config.neck`` / ``config.head``).

    ``forward(images, targets=None)``:
      - ``images``: list of Tensor[C, H, W] (uint8 or float in 0-255 units, any size) or a
        Tensor[B, C, H, W]. Normalised with ``config.image_mean/std`` and zero-padded to
        multiples of 32 (a list of different sizes pads to the largest); never mutated.
      - training, with ``targets`` (B dicts: "boxes" Tensor[M, 4] xyxy pixels, "labels"
        Tensor[M] int64 0-based): dict of weighted losses (SAGH: cls, box_init,
        box_refine, centerness; FCOS head: cls, box, centerness).
      - eval: B dicts {"boxes": Tensor[N, 4] xyxy input pixels, "scores": Tensor[N],
        "labels": Tensor[N] int64}.

    Sub-modules default to those described by ``config``; pass your own to experiment.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        backbone: nn.Module | None = None,
        neck: nn.Module | None = None,
        head: nn.Module | None = None,
        criterion: Criterion | None = None,
        postprocessor: Postprocess | None = None,
        pretrained_backbone: bool | str = False,
    ) -> None:
        super().__init__()
        self.config = config
        if backbone is None:
            backbone = build_backbone(
                config.backbone,
                config.in_channels,
                config.frozen_stages,
                pretrained_backbone,
                config.drop_path,
                first_level=3 if config.strides[0] == 8 else 2,
                norm=config.backbone_norm,
            )
        self.backbone = backbone
        self.neck = neck if neck is not None else build_neck(config, backbone.out_channels)
        self.head = head if head is not None else build_head(config)
        self.criterion = criterion if criterion is not None else build_criterion(config)
        self.postprocessor = postprocessor if postprocessor is not None else build_postprocessor(config)
        self.register_buffer(
            "image_mean", torch.tensor(config.image_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(config.image_std).view(-1, 1, 1), persistent=False
        )

    @property
    def class_names(self) -> list[str]:
        """Class name of each 0-based label."""
        return list(self.config.class_names)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    # ------------------------------------------------------------------ input handling
    def preprocess(self, images: Images) -> tuple[Tensor, list[tuple[int, int]]]:
        """Normalise and pad: returns (Tensor[B, C, H_pad, W_pad] float, [(H, W) per image])."""
        if isinstance(images, Tensor):
            if images.dim() != 4:
                raise ConfigError(
                    f"a batch of images must be Tensor[B, C, H, W], got shape {tuple(images.shape)}"
                )
            batch = list(images.unbind(0))
        else:
            batch = list(images)
        if not batch:
            raise ConfigError("no images given")
        sizes: list[tuple[int, int]] = []
        for index, image in enumerate(batch):
            if not isinstance(image, Tensor) or image.dim() != 3:
                shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
                raise ConfigError(f"image {index} must be a Tensor[C, H, W], got {shape}")
            if image.shape[0] != self.config.in_channels:
                raise ConfigError(
                    f"image {index} has {image.shape[0]} bands but the model expects "
                    f"{self.config.in_channels}"
                )
            if image.shape[1] < 1 or image.shape[2] < 1:
                raise ConfigError(f"image {index} is empty: shape {tuple(image.shape)}")
            sizes.append((int(image.shape[1]), int(image.shape[2])))
        pad_h = -(-max(h for h, _ in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
        pad_w = -(-max(w for _, w in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
        dtype = self.image_mean.dtype
        device = self.image_mean.device
        out = torch.zeros((len(batch), self.config.in_channels, pad_h, pad_w), dtype=dtype, device=device)
        for index, image in enumerate(batch):
            h, w = sizes[index]
            normalised = (image.to(device=device, dtype=dtype) - self.image_mean) / self.image_std
            out[index, :, :h, :w] = normalised
        return out, sizes

    # ------------------------------------------------------------------ forward
    def forward_features(self, batch: Tensor) -> HeadOutputs:
        """Raw head outputs for a normalised, padded Tensor[B, C, H, W] batch."""
        return self.head(self.neck(self.backbone(batch)))

    def points(self, outputs: HeadOutputs) -> list[Tensor]:
        """Point centres (x, y) in pixels of every level of ``outputs``."""
        from fsanet_geo.model.boxes import make_points

        ref = outputs.cls_logits[0]
        return make_points(outputs.sizes, self.config.strides, device=ref.device, dtype=torch.float32)

    def forward(
        self, images: Images, targets: Sequence[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        batch, sizes = self.preprocess(images)
        if self.training:
            if targets is None:
                raise ConfigError("targets are required in training mode (call model.eval() to detect)")
            if len(targets) != len(sizes):
                raise ConfigError(f"{len(targets)} targets for {len(sizes)} images")
        if not self.training and batch.device.type == "cpu":
            # oneDNN convolutions are 15-25 % faster on channels-last inputs (same results).
            batch = batch.contiguous(memory_format=torch.channels_last)
        outputs = self.forward_features(batch)
        points = self.points(outputs)
        if self.training:
            assert targets is not None
            return self.criterion(outputs, points, [dict(t) for t in targets])
        return self.postprocessor(outputs, points, sizes)

    def extra_repr(self) -> str:
        c = self.config
        return f"preset={c.preset}, backbone={c.backbone}, neck={c.neck}, head={c.head}, classes={c.num_classes}"
