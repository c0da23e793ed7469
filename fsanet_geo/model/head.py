"""Detection heads shared across pyramid levels: SAGH (:class:`AlignHead`) and :class:`FCOSHead`.

Both map ``[P3, P4, P5]`` (Tensor[B, C, H_l, W_l]) to :class:`HeadOutputs`. Box
distances (l, t, r, b) are in input pixels (no stride normalisation).
Dimension letters: B = images, K = classes, G = deform groups.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fsanet_geo.model.deform import KERNEL_TAPS, DeformConv3x3, SharedOffsetDeform
from fsanet_geo.model.outputs import HeadOutputs


class Scale(nn.Module):
    """A learnable scalar multiplier (one per pyramid level)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(value)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def _tower(in_channels: int, channels: int, num_convs: int, norm_groups: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(norm_groups, channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def _normal_init(module: nn.Module, std: float = 0.01) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, DeformConv3x3)):
            nn.init.normal_(m.weight, 0.0, std)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


def _cls_prior_bias(prior: float) -> float:
    return -math.log((1.0 - prior) / prior)


class AlignHead(nn.Module):
    """SAGH: coarse box, box-guided deformable convs, refined box.

    Per level, with ``cls_feat``/``reg_feat`` the outputs of the two towers:
    ``init = conv3x3(reg_feat)`` (4 ch); ``box_init = exp(scale(init))``;
    ``offset = conv1x1(init)`` (4 -> G*18, no bias; raw pre-exp ``init`` as input);
    ``cls' = ReLU(GN(DCN(cls_feat, offset)))``, ``reg' = ReLU(GN(DCN(reg_feat, offset)))``;
    ``cls_logits = conv3x3(cls')``; ``box_refine = scale(conv3x3(reg')) + box_init``;
    ``centerness = conv3x3(cls')`` (on the classification branch).
    Convs Normal(0, 0.01), cls bias at prior 0.01.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        feat_channels: int = 256,
        num_convs: int = 3,
        num_levels: int = 3,
        norm_groups: int = 32,
        deform_groups: int = 4,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_tower = _tower(in_channels, feat_channels, num_convs, norm_groups)
        self.reg_tower = _tower(in_channels, feat_channels, num_convs, norm_groups)
        tower_out = feat_channels if num_convs > 0 else in_channels
        self.box_init = nn.Conv2d(tower_out, 4, 3, padding=1)
        self.offset = nn.Conv2d(4, deform_groups * KERNEL_TAPS * 2, 1, bias=False)
        self.cls_deform = DeformConv3x3(tower_out, feat_channels, deform_groups)
        self.reg_deform = DeformConv3x3(tower_out, feat_channels, deform_groups)
        self.shared_deform = SharedOffsetDeform()  # runs the two above: one set of corners on CPU
        self.cls_norm = nn.GroupNorm(norm_groups, feat_channels)
        self.reg_norm = nn.GroupNorm(norm_groups, feat_channels)
        self.relu = nn.ReLU(inplace=True)
        self.cls_logits = nn.Conv2d(feat_channels, num_classes, 3, padding=1)
        self.box_refine = nn.Conv2d(feat_channels, 4, 3, padding=1)
        self.centerness = nn.Conv2d(feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        _normal_init(self)
        nn.init.constant_(self.cls_logits.bias, _cls_prior_bias(prior_prob))

    def forward_level(self, x: Tensor, scale: Scale) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One level: returns (cls_logits, box_refine, centerness, box_init)."""
        cls_feat = self.cls_tower(x)
        reg_feat = self.reg_tower(x)
        init = self.box_init(reg_feat)
        box_init = scale(init).exp()
        offset = self.offset(init)
        cls_feat, reg_feat = self.shared_deform((self.cls_deform, self.reg_deform), (cls_feat, reg_feat), offset)
        cls_feat = self.relu(self.cls_norm(cls_feat))
        reg_feat = self.relu(self.reg_norm(reg_feat))
        box_refine = scale(self.box_refine(reg_feat)) + box_init
        return self.cls_logits(cls_feat), box_refine, self.centerness(cls_feat), box_init

    def forward(self, features: Sequence[Tensor]) -> HeadOutputs:
        outs = [self.forward_level(x, s) for x, s in zip(features, self.scales, strict=True)]
        return HeadOutputs(
            cls_logits=[o[0] for o in outs],
            box_refine=[o[1] for o in outs],
            centerness=[o[2] for o in outs],
            box_init=[o[3] for o in outs],
        )


class FCOSHead(nn.Module):
    """Plain FCOS head: towers, ``cls = conv3x3(cls_feat)``, ``box = exp(scale(conv3x3(reg_feat)))``
    (pixels), ``centerness = conv3x3(reg_feat)`` (on the regression branch, as in FCOS).

    Convs Normal(0, 0.01), cls bias at prior 0.01. ``box_init`` of the outputs is ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        feat_channels: int = 256,
        num_convs: int = 3,
        num_levels: int = 3,
        norm_groups: int = 32,
        prior_prob: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cls_tower = _tower(in_channels, feat_channels, num_convs, norm_groups)
        self.reg_tower = _tower(in_channels, feat_channels, num_convs, norm_groups)
        tower_out = feat_channels if num_convs > 0 else in_channels
        self.cls_logits = nn.Conv2d(tower_out, num_classes, 3, padding=1)
        self.box = nn.Conv2d(tower_out, 4, 3, padding=1)
        self.centerness = nn.Conv2d(tower_out, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(num_levels))
        _normal_init(self)
        nn.init.constant_(self.cls_logits.bias, _cls_prior_bias(prior_prob))

    def forward(self, features: Sequence[Tensor]) -> HeadOutputs:
        cls_logits, boxes, centerness = [], [], []
        for x, scale in zip(features, self.scales, strict=True):
            cls_feat = self.cls_tower(x)
            reg_feat = self.reg_tower(x)
            cls_logits.append(self.cls_logits(cls_feat))
            boxes.append(scale(self.box(reg_feat)).exp())
            centerness.append(self.centerness(reg_feat))
        return HeadOutputs(cls_logits=cls_logits, box_refine=boxes, centerness=centerness, box_init=None)
