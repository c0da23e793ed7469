"""Per-class hard and soft NMS of one set of boxes (torch, CPU or GPU).

Letters: D = boxes given to NMS, E = interacting pairs. Boxes are Tensor[D, 4]
(x1, y1, x2, y2) in pixels; the overlap metric is IoU. The rules (which pairs interact,
the decay, the pick order) are those of :mod:`fsanet_geo.ops.nms_rules`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms as tv_batched_nms

from fsanet_geo.errors import ConfigError
from fsanet_geo.ops.nms_rules import NMS_METHODS, NmsMethod, interaction_threshold, soft_decay
from fsanet_geo.ops.sweep_pairs import overlap_pairs_within


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    method: NmsMethod = "linear",
    sigma: float = 0.5,
    min_score: float = 1e-3,
    labels: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017; mmcv's semantics), per label, computed in parallel.

    Defined by the sequential algorithm: repeatedly pick the box of highest current score
    (ties: lower index); every remaining box j has its score multiplied by
    :func:`~fsanet_geo.ops.nms_rules.soft_decay` of its IoU with the pick (linear:
    ``1 - iou`` if ``iou > iou_threshold``; gaussian: ``exp(-iou^2 / sigma)``, no
    threshold); boxes whose score is below ``min_score`` (from the start or after a decay)
    are dropped.

    Computed exactly but in rounds: a box whose current score beats every live box that
    can decay it (its overlap neighbours) would be picked by the sequential algorithm
    before any of them, so all such local maxima are picked at once and their decays
    applied together (products commute). Rounds = the longest chain of overlapping boxes,
    not the number of boxes; neighbours come from
    :func:`~fsanet_geo.ops.sweep_pairs.overlap_pairs_within`.

    Args:
        boxes: Tensor[D, 4] xyxy.
        scores: Tensor[D].
        method: ``"linear"`` or ``"gaussian"``.
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
    first, second, iou = overlap_pairs_within(
        boxes, interaction_threshold(method, iou_threshold), labels
    )
    decay = soft_decay(iou, method, iou_threshold, sigma)
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
