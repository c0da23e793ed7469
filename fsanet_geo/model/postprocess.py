"""Inference post-processing: head outputs -> per-image boxes, and (soft-)NMS.

Dimension letters: B = images, K = classes, D = detections (boxes) given to NMS, L = levels.
Boxes are (x1, y1, x2, y2) in input-image pixels.
:func:`batched_nms` is torch-only and runs on CPU tensors too, so any code holding boxes
(the cross-tile merge included) can reuse it.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import box_iou

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.outputs import HeadOutputs
from fsanet_geo.model.targets import distance_to_boxes

NmsMethod = Literal["hard", "linear", "gaussian"]
NMS_METHODS: tuple[str, ...] = ("hard", "linear", "gaussian")

__all__ = [
    "NMS_METHODS",
    "NmsMethod",
    "PostProcessor",
    "batched_nms",
    "box_iou",
    "overlapping_pairs",
    "soft_nms",
]


# Most candidate pairs enumerated at once when looking for overlapping boxes (memory bound).
_PAIR_CHUNK = 1 << 22


def _aligned_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of Tensor[E, 4] boxes a[e] and b[e] (the formula of torchvision's box_iou)."""
    width = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    height = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a + area_b - inter)


def overlapping_pairs(
    boxes: Tensor, min_iou: float, groups: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Every unordered pair of boxes of one group with IoU > ``min_iou``, by a sweep along x.

    Boxes are sorted by (group, x1); each box is only compared with the boxes of its group
    whose x1 falls inside its x extent, so the work is proportional to the number of
    x-overlapping pairs (small for tiny objects), not D^2.

    Args:
        boxes: Tensor[D, 4] xyxy.
        min_iou: IoU above which a pair is reported (>= 0).
        groups: Tensor[D] int64 group (class) ids; pairs never cross groups. None: one group.

    Returns:
        first, second: Tensor[E] int64 indices (first != second), and iou: Tensor[E].
    """
    num = boxes.shape[0]
    empty = torch.zeros(0, dtype=torch.long, device=boxes.device)
    if num < 2:
        return empty, empty, boxes.new_zeros(0)
    # Sweep key: x in float64, each group shifted past the previous one's extent.
    x1, x2 = boxes[:, 0].double(), boxes[:, 2].double()
    if groups is not None:
        span = float(x2.max() - x1.min()) + 1.0
        shift = groups.double() * span
        x1, x2 = x1 + shift, x2 + shift
    order = torch.argsort(x1, stable=True)
    sorted_boxes = boxes[order]
    # Candidates of sorted position p: positions p+1 .. end[p]-1 (x1 < x2 of box p).
    end = torch.searchsorted(x1[order].contiguous(), x2[order].contiguous(), side="left")
    start = torch.arange(1, num + 1, device=boxes.device)
    counts = (end - start).clamp(min=0)
    firsts, seconds, ious = [], [], []
    cumulative = torch.cumsum(counts, 0)
    row = 0
    while row < num:
        # Rows [row, stop) hold at most _PAIR_CHUNK candidates (or one row if it holds more).
        before = int(cumulative[row - 1]) if row > 0 else 0
        stop = int(torch.searchsorted(cumulative, before + _PAIR_CHUNK, side="right"))
        stop = min(max(stop, row + 1), num)
        chunk_counts = counts[row:stop]
        total = int(chunk_counts.sum())
        if total > 0:
            rows = torch.repeat_interleave(
                torch.arange(row, stop, device=boxes.device), chunk_counts
            )
            row_starts = torch.cumsum(chunk_counts, 0) - chunk_counts
            within = torch.arange(total, device=boxes.device) - torch.repeat_interleave(
                row_starts, chunk_counts
            )
            cols = rows + 1 + within
            iou = _aligned_iou(sorted_boxes[rows], sorted_boxes[cols])
            keep = iou > min_iou
            firsts.append(order[rows[keep]])
            seconds.append(order[cols[keep]])
            ious.append(iou[keep])
        row = stop
    if not firsts:
        return empty, empty, boxes.new_zeros(0)
    return torch.cat(firsts), torch.cat(seconds), torch.cat(ious)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    method: Literal["linear", "gaussian"] = "linear",
    sigma: float = 0.5,
    min_score: float = 1e-3,
    labels: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017; mmcv's semantics), per label, computed in parallel.

    Defined by the sequential algorithm: repeatedly pick the box of highest current score
    (ties: lower index); every remaining box j has its score multiplied by ``1 - iou`` if
    ``iou > iou_threshold`` (linear) or by ``exp(-iou^2 / sigma)`` (gaussian, no
    threshold); boxes whose score is below ``min_score`` (from the start or after a decay)
    are dropped.

    Computed exactly but in rounds: a box whose current score beats every live box that
    can decay it (its overlap neighbours) would be picked by the sequential algorithm
    before any of them, so all such local maxima are picked at once and their decays
    applied together (products commute). Rounds = the longest chain of overlapping boxes,
    not the number of boxes; neighbours come from :func:`overlapping_pairs`.

    Args:
        boxes: Tensor[D, 4] xyxy.
        scores: Tensor[D].
        labels: Tensor[D] int64; boxes of different labels never decay each other.
            None: a single class.

    Returns:
        keep: Tensor[D'] int64 indices into ``boxes``, sorted by final score, descending
            (the sequential pick order up to ties).
        new_scores: Tensor[D'] the decayed scores of the kept boxes.
    """
    if method not in ("linear", "gaussian"):
        raise ConfigError(f"unknown soft-NMS method {method!r}: use linear or gaussian")
    num = boxes.shape[0]
    device = boxes.device
    min_iou = iou_threshold if method == "linear" else 0.0
    first, second, iou = overlapping_pairs(boxes, min_iou, labels)
    if method == "linear":
        decay = 1 - iou
    else:
        decay = torch.exp(-(iou * iou) / sigma)
    # Directed edges src -> dst: picking src multiplies dst's score by decay.
    src = torch.cat([first, second])
    dst = torch.cat([second, first])
    decay = torch.cat([decay, decay]).to(scores.dtype)

    current = scores.clone()
    alive = current >= min_score
    kept_mask = torch.zeros(num, dtype=torch.bool, device=device)
    final = current.clone()
    while bool(alive.any()):
        # Keep only the edges between live boxes.
        live = (alive.index_select(0, src) & alive.index_select(0, dst)).nonzero().squeeze(1)
        src, dst, decay = (
            src.index_select(0, live),
            dst.index_select(0, live),
            decay.index_select(0, live),
        )
        # src beats dst: higher score, or equal score and lower index.
        score_src, score_dst = current.index_select(0, src), current.index_select(0, dst)
        beats = (score_src > score_dst) | ((score_src == score_dst) & (src < dst))
        beaten = torch.zeros(num, dtype=torch.uint8, device=device)
        beaten.scatter_reduce_(0, dst, beats.to(torch.uint8), reduce="amax")
        picked = alive & (beaten == 0)
        kept_mask |= picked
        final = torch.where(picked, current, final)
        alive &= ~picked
        hit = picked.index_select(0, src) & alive.index_select(0, dst)
        factor = torch.where(hit, decay, torch.ones_like(decay))
        current = current.scatter_reduce(0, dst, factor, reduce="prod")
        alive &= current >= min_score
    kept = kept_mask.nonzero().squeeze(1)
    kept_scores = final[kept]
    order = torch.argsort(kept_scores, descending=True, stable=True)
    return kept[order], kept_scores[order]


def batched_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    method: str = "hard",
    sigma: float = 0.5,
    min_score: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Per-class NMS: boxes of different labels never suppress each other.

    ``hard`` is :func:`torchvision.ops.batched_nms` (suppress when IoU > threshold; no
    ``min_score`` cut). ``linear`` and ``gaussian`` are soft-NMS (see :func:`soft_nms`),
    all classes at once.

    Args:
        boxes: Tensor[D, 4] xyxy.
        scores: Tensor[D].
        labels: Tensor[D] int64 class (or group) ids.
        iou_threshold: IoU above which boxes are suppressed / linearly decayed.
        method: ``hard``, ``linear`` or ``gaussian``.
        sigma: Gaussian soft-NMS parameter.
        min_score: soft-NMS drops boxes whose decayed score falls below it.

    Returns:
        keep: Tensor[D'] int64 indices into ``boxes``, sorted by final score, descending.
        new_scores: Tensor[D'] final scores of the kept boxes (equal to ``scores[keep]``
        for hard NMS).
    """
    if method not in NMS_METHODS:
        raise ConfigError(f"unknown NMS method {method!r}: use one of {', '.join(NMS_METHODS)}")
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device), scores.new_zeros(0)
    if method == "hard":
        keep = tv_batched_nms(boxes, scores, labels, iou_threshold)
        return keep, scores[keep]
    return soft_nms(boxes, scores, iou_threshold, method, sigma, min_score, labels)  # type: ignore[arg-type]


class PostProcessor:
    """Turns :class:`HeadOutputs` into torchvision-style detections (FSANET.md "Inference").

    Per image and level: sigmoid class scores, keep (point, class) pairs with
    class score > ``score_thr``; final score = class score * sigmoid(centerness) (when
    ``use_centerness``); the top ``nms_pre`` pairs by final score (as mmdet 2.0-2.17's
    FCOS; later mmdet ranks by the class score, the same unless ``nms_pre`` binds, which it
    does on the P2 level of the tiny presets); decode the refined distances and clip to
    the image; drop boxes left with no width or height (the signed refined distances
    can invert a box); then per-class NMS over all levels and the top ``max_per_img``.
    """

    def __init__(
        self,
        score_thr: float = 0.05,
        nms_pre: int = 3000,
        nms: str = "hard",
        nms_iou: float = 0.5,
        soft_sigma: float = 0.5,
        min_score: float = 1e-3,
        max_per_img: int = 1500,
        use_centerness: bool = True,
    ) -> None:
        if nms not in NMS_METHODS:
            raise ConfigError(f"unknown NMS method {nms!r}: use one of {', '.join(NMS_METHODS)}")
        if nms_pre < 1 or max_per_img < 1:
            raise ConfigError(f"nms_pre ({nms_pre}) and max_per_img ({max_per_img}) must be >= 1")
        if not 0.0 <= nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in [0, 1], got {nms_iou}")
        if soft_sigma <= 0:
            raise ConfigError(f"soft_sigma must be > 0, got {soft_sigma}")
        self.score_thr = score_thr
        self.nms_pre = nms_pre
        self.nms = nms
        self.nms_iou = nms_iou
        self.soft_sigma = soft_sigma
        self.min_score = min_score
        self.max_per_img = max_per_img
        self.use_centerness = use_centerness

    @torch.no_grad()
    def __call__(
        self,
        outputs: HeadOutputs,
        points: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Detections of every image.

        Args:
            outputs: head outputs for B images.
            points: per level Tensor[H_l * W_l, 2] (x, y) pixels.
            image_sizes: (H, W) of each image before padding; boxes are clipped to it.

        Returns:
            B dicts: "boxes" Tensor[D, 4] xyxy input pixels, "scores" Tensor[D],
            "labels" Tensor[D] int64, sorted by score descending, D <= max_per_img.
        """
        num_images = int(outputs.cls_logits[0].shape[0])
        if len(image_sizes) != num_images:
            raise ValueError(f"{len(image_sizes)} image sizes for {num_images} images")
        if len(points) != len(outputs.cls_logits):
            raise ValueError(
                f"{len(points)} point levels for {len(outputs.cls_logits)} output levels"
            )
        return [self._single(outputs, points, i, image_sizes[i]) for i in range(num_images)]

    def _single(
        self,
        outputs: HeadOutputs,
        points: list[Tensor],
        image_index: int,
        image_size: tuple[int, int],
    ) -> dict[str, Tensor]:
        all_boxes, all_scores, all_labels = [], [], []
        for level, level_points in enumerate(points):
            logits = outputs.cls_logits[level][image_index]  # [K, H, W]
            scores = logits.flatten(1).t().float().sigmoid()  # [HW, K]
            candidates = scores > self.score_thr
            point_idx, class_idx = candidates.nonzero(as_tuple=True)
            cand_scores = scores[point_idx, class_idx]
            if self.use_centerness:
                ctr = outputs.centerness[level][image_index].reshape(-1).float().sigmoid()
                cand_scores = cand_scores * ctr[point_idx]
            if cand_scores.numel() > self.nms_pre:
                # Rank by the final score: a P2 level of an 800 px tile can hold tens of
                # thousands of pairs over score_thr, and ranking by the class score alone
                # would keep off-centre points and drop the centres of small objects.
                cand_scores, top = cand_scores.topk(self.nms_pre)
                point_idx, class_idx = point_idx[top], class_idx[top]
            dist = outputs.box_refine[level][image_index].flatten(1).t().float()  # [HW, 4]
            boxes = distance_to_boxes(level_points[point_idx].float(), dist[point_idx])
            all_boxes.append(boxes)
            all_scores.append(cand_scores)
            all_labels.append(class_idx)
        boxes = torch.cat(all_boxes)
        scores = torch.cat(all_scores)
        labels = torch.cat(all_labels).long()
        height, width = image_size
        boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=height)
        # The refined distances are signed (coarse box + residual), so a box can come out
        # inverted (x2 < x1) or, clipped at the image edge, empty: no object, drop it.
        proper = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
        if not bool(proper.all()):
            boxes, scores, labels = boxes[proper], scores[proper], labels[proper]
        keep, new_scores = batched_nms(
            boxes,
            scores,
            labels,
            self.nms_iou,
            method=self.nms,
            sigma=self.soft_sigma,
            min_score=self.min_score,
        )
        keep, new_scores = keep[: self.max_per_img], new_scores[: self.max_per_img]
        return {"boxes": boxes[keep], "scores": new_scores, "labels": labels[keep]}
