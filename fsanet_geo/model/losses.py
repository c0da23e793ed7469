"""Losses of FSANet (SAGH head) and of the plain FCOS head.

Dimension letters: B = images, K = classes, N = points over all levels (per image),
P = positive points, M = ground-truth boxes. Distances and boxes are in input pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import sigmoid_focal_loss

from fsanet_geo.model.outputs import HeadOutputs
from fsanet_geo.model.targets import (
    assign_gt_index,
    fcos_centerness,
    gaussian_centerness,
    level_ranges,
    level_strides,
    normalise_per_object,
    refined_centres,
    targets_from_index,
)


def iou_loss(pred_dist: Tensor, target_dist: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    """Weighted sum of ``-ln IoU`` between boxes decoded around the same points.

    Equal to decoding both distance sets into (x1, y1, x2, y2) boxes and taking mmdet's
    aligned IoU (intersection clamped at 0, union at ``eps``, IoU clamped at ``eps``), so
    targets with negative components (refine positives outside their GT) are exact.

    Args:
        pred_dist: Tensor[P, 4] predicted (l, t, r, b) pixels.
        target_dist: Tensor[P, 4] target (l, t, r, b) pixels.
        weight: Tensor[P] per-positive weight.

    Returns:
        Scalar tensor: ``sum(weight * -ln IoU)``; the caller divides by its normaliser.
    """
    pl, pt, pr, pb = pred_dist.unbind(dim=-1)
    tl, tt, tr, tb = target_dist.unbind(dim=-1)
    pred_area = (pl + pr) * (pt + pb)
    target_area = (tl + tr) * (tt + tb)
    inter_w = (torch.minimum(pl, tl) + torch.minimum(pr, tr)).clamp(min=0)
    inter_h = (torch.minimum(pt, tt) + torch.minimum(pb, tb)).clamp(min=0)
    inter = inter_w * inter_h
    union = (pred_area + target_area - inter).clamp(min=eps)
    iou = (inter / union).clamp(min=eps)
    return (-iou.log() * weight).sum()


def reduce_mean(value: Tensor) -> Tensor:
    """Average a scalar over processes when torch.distributed is initialised, else itself."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


@dataclass
class _FlatOutputs:
    """Head outputs flattened to points: every tensor is [B, N, ...], float32."""

    cls_logits: Tensor  # [B, N, K]
    box_refine: Tensor  # [B, N, 4]
    centerness: Tensor  # [B, N]
    box_init: Tensor | None  # [B, N, 4]


def _flatten_levels(maps: list[Tensor]) -> Tensor:
    """Per-level [B, C, H_l, W_l] maps -> [B, N, C] (row-major points, levels in order)."""
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1).float()


def _flatten_outputs(outputs: HeadOutputs) -> _FlatOutputs:
    return _FlatOutputs(
        cls_logits=_flatten_levels(outputs.cls_logits),
        box_refine=_flatten_levels(outputs.box_refine),
        centerness=_flatten_levels(outputs.centerness)[..., 0],
        box_init=None if outputs.box_init is None else _flatten_levels(outputs.box_init),
    )


class _PointCriterion:
    """Shared checks and helpers of the two criteria."""

    def __init__(
        self,
        num_classes: int,
        strides: Sequence[int],
        regress_ranges: Sequence[tuple[float, float]],
        focal_alpha: float,
        focal_gamma: float,
        nearest_fallback: bool = False,
        centerness_per_object: bool = False,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if len(strides) != len(regress_ranges):
            raise ValueError(f"{len(strides)} strides but {len(regress_ranges)} regress ranges")
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        self.regress_ranges = tuple((float(lo), float(hi)) for lo, hi in regress_ranges)
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.nearest_fallback = nearest_fallback
        self.centerness_per_object = centerness_per_object

    def _prepare(
        self, outputs: HeadOutputs, points: list[Tensor]
    ) -> tuple[_FlatOutputs, Tensor, Tensor, Tensor | None]:
        """Flattened outputs, all points Tensor[N, 2], their level ranges Tensor[N, 2] and,
        with the nearest-point fallback on, their level strides Tensor[N] (else None)."""
        sizes = outputs.sizes
        if not (len(sizes) == len(points) == len(self.strides)):
            raise ValueError(
                f"{len(sizes)} output levels, {len(points)} point levels, "
                f"{len(self.strides)} strides: they must match"
            )
        for (h, w), pts in zip(sizes, points, strict=True):
            if pts.shape[0] != h * w:
                raise ValueError(f"a level of {h}x{w} outputs has {pts.shape[0]} points")
        num_logits = int(outputs.cls_logits[0].shape[1])
        if num_logits != self.num_classes:
            raise ValueError(
                f"head gives {num_logits} classes, criterion expects {self.num_classes}"
            )
        flat = _flatten_outputs(outputs)
        all_points = torch.cat(points, dim=0).to(flat.box_refine.dtype)
        ranges = level_ranges(
            sizes, self.regress_ranges, device=all_points.device, dtype=all_points.dtype
        )
        point_strides = None
        if self.nearest_fallback:
            point_strides = level_strides(
                sizes, self.strides, device=all_points.device, dtype=all_points.dtype
            )
        return flat, all_points, ranges, point_strides

    def _assign(
        self,
        points: Tensor,
        ranges: Tensor,
        point_strides: Tensor | None,
        targets: list[dict],
        queries: list[Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Assignment of every image's points (the refine one when ``queries`` are given).

        Args:
            points: Tensor[N, 2]; ranges: Tensor[N, 2]; point_strides: Tensor[N] or None.
            targets: B dicts with "boxes" Tensor[M_b, 4] xyxy pixels and "labels" Tensor[M_b].
            queries: B Tensor[N, 2] probe positions, or None.

        Returns:
            labels Tensor[B * N] (K: background), box targets Tensor[B * N, 4] and object
            ids Tensor[B * N] (the GT's index counted over all B images; only meaningful at
            positives), images concatenated.
        """
        labels, box_targets, object_ids = [], [], []
        offset = 0
        for image_index, target in enumerate(targets):
            boxes = target["boxes"].to(device=points.device, dtype=points.dtype)
            query = None if queries is None else queries[image_index]
            gt_index = assign_gt_index(points, ranges, boxes, query=query, point_strides=point_strides)
            lab, tgt = targets_from_index(
                points, gt_index, boxes, target["labels"].to(points.device), self.num_classes
            )
            labels.append(lab)
            box_targets.append(tgt)
            object_ids.append(gt_index + offset)
            offset += boxes.shape[0]
        return torch.cat(labels), torch.cat(box_targets), torch.cat(object_ids)

    def _centerness_target(
        self, box_targets: Tensor, object_ids: Tensor, targets: list[dict], gaussian: bool
    ) -> Tensor:
        """Centerness targets Tensor[P] of positives' (l, t, r, b) Tensor[P, 4] (object ids
        Tensor[P] from :meth:`_assign` over ``targets``): Gaussian or FCOS, divided per
        object by its best one when ``centerness_per_object``."""
        target = gaussian_centerness(box_targets) if gaussian else fcos_centerness(box_targets)
        if self.centerness_per_object:
            num_objects = sum(int(t["boxes"].shape[0]) for t in targets)  # no device sync
            target = normalise_per_object(target, object_ids, num_objects)
        return target

    def _focal(self, logits: Tensor, labels: Tensor, normaliser: Tensor) -> Tensor:
        """Focal loss of Tensor[P, K] logits vs Tensor[P] labels (K: background), sum / norm."""
        one_hot = F.one_hot(labels, self.num_classes + 1)[:, : self.num_classes].to(logits.dtype)
        loss = sigmoid_focal_loss(
            logits, one_hot, alpha=self.focal_alpha, gamma=self.focal_gamma, reduction="sum"
        )
        return loss / normaliser

    def _box_loss(
        self, pred: Tensor, targets: Tensor, positive: Tensor, centerness_target: Tensor
    ) -> Tensor:
        """IoU loss at positives weighted by their centerness target / (averaged) weight sum.

        With no positive (on every process) the result is an exact zero still attached to
        ``pred``'s graph.
        """
        pos_pred = pred[positive]
        denom = reduce_mean(centerness_target.sum().detach()).clamp(min=1e-6)
        if pos_pred.shape[0] == 0:
            return pos_pred.sum()
        return iou_loss(pos_pred, targets[positive], centerness_target) / denom

    @staticmethod
    def _centerness_loss(
        logits: Tensor, positive: Tensor, target: Tensor, normaliser: Tensor
    ) -> Tensor:
        """BCE-with-logits at positives, summed / normaliser (zero with gradient if none)."""
        pos_logits = logits[positive]
        if pos_logits.shape[0] == 0:
            return pos_logits.sum()
        bce = F.binary_cross_entropy_with_logits(pos_logits, target, reduction="sum")
        return bce / normaliser

    @staticmethod
    def _num_positive(positive: Tensor) -> Tensor:
        """Number of positives averaged over processes, at least 1 (float32 scalar)."""
        count = positive.sum().to(torch.float32)
        return reduce_mean(count).clamp(min=1.0)


class FSANetCriterion(_PointCriterion):
    """Losses of FSANet's SAGH head (FSANET.md, "Training targets" and "Losses").

    - cls: sigmoid focal loss vs the refine labels over all points / refine positives;
    - box_init: IoU loss of the coarse boxes at the initial (FCOS) positives, weighted by
      the Gaussian centerness target, / the sum of those weights;
    - box_refine: the same for the refined boxes at the refine positives;
    - centerness: BCE with logits vs the Gaussian centerness target at the refine positives
      / refine positives.

    The refine assignment probes the centres of the detached refined predictions.
    Normalisers are averaged across processes under torch.distributed.
    """

    def __init__(
        self,
        num_classes: int,
        strides: Sequence[int],
        regress_ranges: Sequence[tuple[float, float]],
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        weight_cls: float = 1.0,
        weight_box_init: float = 0.2,
        weight_box_refine: float = 1.0,
        weight_centerness: float = 1.0,
        nearest_fallback: bool = False,
        centerness_per_object: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            strides,
            regress_ranges,
            focal_alpha,
            focal_gamma,
            nearest_fallback,
            centerness_per_object,
        )
        self.weight_cls = weight_cls
        self.weight_box_init = weight_box_init
        self.weight_box_refine = weight_box_refine
        self.weight_centerness = weight_centerness

    def __call__(
        self, outputs: HeadOutputs, points: list[Tensor], targets: list[dict]
    ) -> dict[str, Tensor]:
        """Weighted losses ``{"cls", "box_init", "box_refine", "centerness"}``.

        Args:
            outputs: the head's raw outputs for B images (``box_init`` required).
            points: per level Tensor[H_l * W_l, 2] (x, y) pixels (``model.boxes.make_points``).
            targets: B dicts with "boxes" Tensor[M, 4] xyxy pixels and "labels" Tensor[M]
                int64 in [0, K); M may be 0.
        """
        if outputs.box_init is None:
            raise ValueError("FSANetCriterion needs outputs.box_init (the SAGH coarse boxes)")
        flat, all_points, ranges, point_strides = self._prepare(outputs, points)
        assert flat.box_init is not None
        if len(targets) != flat.cls_logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for {flat.cls_logits.shape[0]} images")

        init_labels_t, init_targets_t, init_ids = self._assign(all_points, ranges, point_strides, targets)
        with torch.no_grad():
            queries = [refined_centres(all_points, pred.detach()) for pred in flat.box_refine]
        refine_labels_t, refine_targets_t, refine_ids = self._assign(
            all_points, ranges, point_strides, targets, queries
        )
        init_pos = init_labels_t < self.num_classes
        refine_pos = refine_labels_t < self.num_classes

        cls_logits = flat.cls_logits.reshape(-1, self.num_classes)
        box_init = flat.box_init.reshape(-1, 4)
        box_refine = flat.box_refine.reshape(-1, 4)
        centerness = flat.centerness.reshape(-1)

        num_refine_pos = self._num_positive(refine_pos)
        init_centerness = self._centerness_target(
            init_targets_t[init_pos], init_ids[init_pos], targets, True
        )
        refine_centerness = self._centerness_target(
            refine_targets_t[refine_pos], refine_ids[refine_pos], targets, True
        )

        loss_cls = self._focal(cls_logits, refine_labels_t, num_refine_pos)
        loss_box_init = self._box_loss(box_init, init_targets_t, init_pos, init_centerness)
        loss_box_refine = self._box_loss(
            box_refine, refine_targets_t, refine_pos, refine_centerness
        )
        loss_centerness = self._centerness_loss(
            centerness, refine_pos, refine_centerness, num_refine_pos
        )
        return {
            "cls": self.weight_cls * loss_cls,
            "box_init": self.weight_box_init * loss_box_init,
            "box_refine": self.weight_box_refine * loss_box_refine,
            "centerness": self.weight_centerness * loss_centerness,
        }


class FCOSCriterion(_PointCriterion):
    """Losses of the plain FCOS head (no coarse stage), for the ablations.

    Initial assignment only; cls: focal loss / positives; box: IoU loss of
    ``outputs.box_refine`` weighted by the FCOS centerness target / its sum; centerness:
    BCE with logits vs the FCOS centerness target / positives.
    """

    def __init__(
        self,
        num_classes: int,
        strides: Sequence[int],
        regress_ranges: Sequence[tuple[float, float]],
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        weight_cls: float = 1.0,
        weight_box: float = 1.0,
        weight_centerness: float = 1.0,
        nearest_fallback: bool = False,
        centerness_per_object: bool = False,
    ) -> None:
        super().__init__(
            num_classes,
            strides,
            regress_ranges,
            focal_alpha,
            focal_gamma,
            nearest_fallback,
            centerness_per_object,
        )
        self.weight_cls = weight_cls
        self.weight_box = weight_box
        self.weight_centerness = weight_centerness

    def __call__(
        self, outputs: HeadOutputs, points: list[Tensor], targets: list[dict]
    ) -> dict[str, Tensor]:
        """Weighted losses ``{"cls", "box", "centerness"}`` (arguments as FSANetCriterion)."""
        flat, all_points, ranges, point_strides = self._prepare(outputs, points)
        if len(targets) != flat.cls_logits.shape[0]:
            raise ValueError(f"{len(targets)} targets for {flat.cls_logits.shape[0]} images")
        labels_t, targets_t, object_ids = self._assign(all_points, ranges, point_strides, targets)
        positive = labels_t < self.num_classes

        cls_logits = flat.cls_logits.reshape(-1, self.num_classes)
        box = flat.box_refine.reshape(-1, 4)
        centerness = flat.centerness.reshape(-1)

        num_pos = self._num_positive(positive)
        centerness_target = self._centerness_target(
            targets_t[positive], object_ids[positive], targets, False
        )
        return {
            "cls": self.weight_cls * self._focal(cls_logits, labels_t, num_pos),
            "box": self.weight_box * self._box_loss(box, targets_t, positive, centerness_target),
            "centerness": self.weight_centerness
            * self._centerness_loss(centerness, positive, centerness_target, num_pos),
        }
