"""Inference post-processing: head outputs -> per-image boxes, scores and labels.

Dimension letters: B = images, K = classes, D = detections (boxes) given to NMS, L = levels.
Boxes are (x1, y1, x2, y2) in input-image pixels. The NMS itself is
:func:`fsanet_geo.ops.nms.batched_nms`, whose rules the cross-tile merge shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.boxes import distance_to_boxes
from fsanet_geo.model.outputs import HeadOutputs
from fsanet_geo.ops.nms import batched_nms
from fsanet_geo.ops.nms_rules import check_nms_options

__all__ = ["CAP_REFERENCE_PX", "PostProcessor", "scaled_cap"]

CAP_REFERENCE_PX = 800
"""Side (pixels) of the image ``nms_pre`` and ``max_per_img`` are set for (AI-TOD's 800 px
images); a larger image gets caps scaled with its area (:func:`scaled_cap`)."""


def scaled_cap(cap: int, image_size: tuple[int, int]) -> int:
    """``cap`` for an image of ``image_size`` (H, W) pixels: unchanged up to
    :data:`CAP_REFERENCE_PX` squared, else multiplied by ``ceil(H * W / 800**2)``, so a
    3000 px tile keeps as many objects as the 800 px tiles covering it."""
    height, width = image_size
    return int(cap) * max(1, math.ceil(int(height) * int(width) / CAP_REFERENCE_PX**2))


class PostProcessor:
    """Turns :class:`HeadOutputs` into torchvision-style detections (FSANET.md "Inference").

    Per image and level: sigmoid class scores, keep (point, class) pairs with
    class score > ``score_thr``; final score = class score * sigmoid(centerness) (when
    ``use_centerness``); the top ``nms_pre`` pairs by final score (as mmdet 2.0-2.17's
    FCOS; later mmdet ranks by the class score, the same unless ``nms_pre`` binds, which it
    does on the P2 level of the tiny presets); decode the refined distances and clip to
    the image; drop boxes left with no width or height (the signed refined distances
    can invert a box); then per-class NMS over all levels and the top ``max_per_img``;
    last, with ``class_score_thr`` (one calibrated cut per class), detections whose final
    score is below their class's cut. ``nms_pre`` and ``max_per_img`` scale with the image
    area beyond 800 x 800 px (:func:`scaled_cap`).
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
        class_score_thr: Sequence[float] | None = None,
    ) -> None:
        check_nms_options(nms, nms_iou, soft_sigma)
        if nms_pre < 1 or max_per_img < 1:
            raise ConfigError(f"nms_pre ({nms_pre}) and max_per_img ({max_per_img}) must be >= 1")
        self.score_thr = score_thr
        self.nms_pre = nms_pre
        self.nms = nms
        self.nms_iou = nms_iou
        self.soft_sigma = soft_sigma
        self.min_score = min_score
        self.max_per_img = max_per_img
        self.use_centerness = use_centerness
        self.class_score_thr = None if class_score_thr is None else tuple(float(v) for v in class_score_thr)

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
            "labels" Tensor[D] int64, sorted by score descending, D <= the scaled max_per_img.
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
        nms_pre, max_per_img = scaled_cap(self.nms_pre, image_size), scaled_cap(self.max_per_img, image_size)
        for level, level_points in enumerate(points):
            logits = outputs.cls_logits[level][image_index]  # [K, H, W]
            scores = logits.flatten(1).t().float().sigmoid()  # [HW, K]
            candidates = scores > self.score_thr
            point_idx, class_idx = candidates.nonzero(as_tuple=True)
            cand_scores = scores[point_idx, class_idx]
            if self.use_centerness:
                ctr = outputs.centerness[level][image_index].reshape(-1).float().sigmoid()
                cand_scores = cand_scores * ctr[point_idx]
            if cand_scores.numel() > nms_pre:
                # Rank by the final score: a P2 level of an 800 px tile can hold tens of
                # thousands of pairs over score_thr, and ranking by the class score alone
                # would keep off-centre points and drop the centres of small objects.
                cand_scores, top = cand_scores.topk(nms_pre)
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
        keep, new_scores = keep[:max_per_img], new_scores[:max_per_img]
        boxes, labels = boxes[keep], labels[keep]
        if self.class_score_thr is not None:
            cut = torch.tensor(self.class_score_thr, dtype=new_scores.dtype, device=new_scores.device)
            passed = new_scores >= cut[labels]
            boxes, new_scores, labels = boxes[passed], new_scores[passed], labels[passed]
        return {"boxes": boxes, "scores": new_scores, "labels": labels}
