"""Training targets of FCOS and FSANet: level ranges, assignment, centerness.

Dimension letters: N = points over all levels, M = ground-truth boxes, P = positive points,
L = pyramid levels. Every coordinate and distance is in input-image pixels; distances are
``(l, t, r, b)`` from a point to the left, top, right and bottom edges of a box. The points
themselves and the box encoding live in :mod:`fsanet_geo.model.boxes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from fsanet_geo.model.boxes import boxes_to_distances

# Worst-case number of (point, GT) pairs examined at once by :func:`assign_targets`.
_ASSIGN_CHUNK_ELEMENTS = 1 << 22


def _repeat_per_level(
    sizes: Sequence[tuple[int, int]],
    values: Sequence[Sequence[float]],
    width: int,
    what: str,
    device: torch.device | str | None,
    dtype: torch.dtype,
) -> Tensor:
    """One row of ``width`` values per level, repeated for each of its H_l * W_l points:
    Tensor[N, width], levels concatenated in the order of ``sizes``."""
    if len(sizes) != len(values):
        raise ValueError(f"{len(sizes)} level sizes but {len(values)} {what}")
    table = torch.tensor([[float(v) for v in row] for row in values], device=device, dtype=dtype)
    counts = torch.tensor([h * w for h, w in sizes], device=table.device, dtype=torch.long)
    return table.reshape(len(values), width).repeat_interleave(counts, dim=0)


def level_ranges(
    sizes: Sequence[tuple[int, int]],
    regress_ranges: Sequence[tuple[float, float]],
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The regress range (lo, hi) of each point's level, Tensor[N, 2] in pixels.

    ``hi`` may be ``math.inf``. Levels are concatenated in the order of ``sizes``.
    """
    return _repeat_per_level(sizes, regress_ranges, 2, "regress ranges", device, dtype)


def level_strides(
    sizes: Sequence[tuple[int, int]],
    strides: Sequence[int],
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The stride (pixels) of each point's level, Tensor[N], levels in the order of ``sizes``."""
    rows = [(stride,) for stride in strides]
    return _repeat_per_level(sizes, rows, 1, "strides", device, dtype).reshape(-1)


def _candidate_pairs(probe: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """(probe, box) index pairs with ``x1 < x < x2``, found by sorting the probes along x.

    Args:
        probe: Tensor[N, 2] (x, y) pixels.
        boxes: Tensor[m, 4] xyxy pixels.

    Returns:
        point_index, box_index: Tensor[E] int64. E is about N * (mean box width / image
        width) per box: small for tiny objects, at most N * m.
    """
    order = torch.argsort(probe[:, 0])
    xs = probe[order, 0].contiguous()
    first = torch.searchsorted(xs, boxes[:, 0].contiguous(), side="right")  # x > x1
    stop = torch.searchsorted(xs, boxes[:, 2].contiguous(), side="left")  # x < x2
    counts = (stop - first).clamp(min=0)
    total = int(counts.sum())
    box_index = torch.repeat_interleave(torch.arange(boxes.shape[0], device=boxes.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    within = torch.arange(total, device=boxes.device) - torch.repeat_interleave(starts, counts)
    point_index = order[torch.repeat_interleave(first, counts) + within]
    return point_index, box_index


def _smallest_per_point(
    point_index: Tensor, box_index: Tensor, areas: Tensor, num_points: int, num_gts: int
) -> tuple[Tensor, Tensor]:
    """Resolve (point, GT) pairs Tensor[E] each: per point, the GT of smallest area wins
    (ties: the lower GT index). Returns area Tensor[N] (``inf`` without a pair) and GT
    index Tensor[N] (``num_gts`` without a pair)."""
    pair_area = areas[box_index]
    best_area = areas.new_full((num_points,), math.inf)
    best_area.scatter_reduce_(0, point_index, pair_area, reduce="amin")
    ties = pair_area == best_area[point_index]
    best_index = torch.full((num_points,), num_gts, dtype=torch.long, device=areas.device)
    best_index.scatter_reduce_(0, point_index[ties], box_index[ties], reduce="amin")
    return best_area, best_index


def _best_boxes(
    probe: Tensor, ranges: Tensor, gt_boxes: Tensor, areas: Tensor
) -> tuple[Tensor, Tensor]:
    """Smallest-area candidate GT of each probe point: (best area Tensor[N], index Tensor[N]).

    A point without candidate gets area ``inf`` and index M (one past the last GT).
    """
    num_points, num_gts = probe.shape[0], gt_boxes.shape[0]
    best_area = probe.new_full((num_points,), math.inf)
    best_index = torch.full((num_points,), num_gts, dtype=torch.long, device=probe.device)
    # GT chunks keep the pairs of one pass below about _ASSIGN_CHUNK_ELEMENTS in the worst
    # case; chunks come in GT order, so ties between chunks keep the lower index.
    gts_per_chunk = max(1, _ASSIGN_CHUNK_ELEMENTS // max(num_points, 1))
    for start in range(0, num_gts, gts_per_chunk):
        stop = min(start + gts_per_chunk, num_gts)
        point_index, box_index = _candidate_pairs(probe, gt_boxes[start:stop])
        box_index = box_index + start
        dist = boxes_to_distances(probe[point_index], gt_boxes[box_index])  # [E, 4]
        max_dist = dist.amax(dim=-1)
        pair_ranges = ranges[point_index]
        # mmdet FCOS: inside strictly, and (max >= lo) & (max <= hi), both ends inclusive.
        ok = (
            (dist.amin(dim=-1) > 0)
            & (max_dist >= pair_ranges[:, 0])
            & (max_dist <= pair_ranges[:, 1])
        )
        chunk_area, chunk_index = _smallest_per_point(
            point_index[ok], box_index[ok], areas, num_points, num_gts
        )
        better = chunk_area < best_area
        best_area = torch.where(better, chunk_area, best_area)
        best_index = torch.where(better, chunk_index, best_index)
    return best_area, best_index


def _nearest_fallback(
    points: Tensor,
    ranges: Tensor,
    point_strides: Tensor,
    gt_boxes: Tensor,
    areas: Tensor,
    best_area: Tensor,
    best_index: Tensor,
    max_rounds: int = 3,
) -> tuple[Tensor, Tensor]:
    """Give each GT left without a positive point the nearest free point near its centre.

    Candidates of a GT: still-background points within one stride (L-infinity, the point's
    own level) of the box centre, on a level whose range admits half the box's longer
    side. The nearest (Euclidean; ties: lower point index) is taken. Several GTs wanting
    one point: the smallest area wins (ties: lower GT index) and the others try again with
    the points that are left, for up to ``max_rounds`` rounds.

    Every box has a point within half a stride of its centre on each axis, so every GT
    that fits a level's range gets a positive unless its neighbours took every candidate.

    Args:
        points: Tensor[N, 2] (x, y) pixels (the points themselves, never refine queries).
        ranges: Tensor[N, 2] level range of each point; point_strides: Tensor[N] pixels.
        gt_boxes: Tensor[M, 4] xyxy pixels; areas: Tensor[M] pixels^2.
        best_area, best_index: the regular assignment (area ``inf`` / index M: background).

    Returns:
        Updated (best_area Tensor[N], best_index Tensor[N]).
    """
    num_points, num_gts = points.shape[0], gt_boxes.shape[0]
    centres = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2  # [M, 2]
    half_long = (gt_boxes[:, 2:] - gt_boxes[:, :2]).amax(dim=-1) / 2  # [M]
    for _ in range(max_rounds):
        has_point = torch.zeros(num_gts + 1, dtype=torch.bool, device=points.device)
        has_point[best_index] = True
        missing = (~has_point[:num_gts]).nonzero(as_tuple=True)[0]
        if missing.numel() == 0:
            break
        free = torch.isinf(best_area)
        chosen = torch.full_like(missing, -1)
        per_chunk = max(1, _ASSIGN_CHUNK_ELEMENTS // max(num_points, 1))
        for start in range(0, missing.numel(), per_chunk):
            gts = missing[start : start + per_chunk]
            offset = points[None, :, :] - centres[gts, None, :]  # [m, N, 2]
            size = half_long[gts, None]
            ok = (
                free[None, :]
                & (offset.abs().amax(dim=-1) <= point_strides[None, :])
                & (size >= ranges[None, :, 0])
                & (size <= ranges[None, :, 1])
            )
            dist = offset.square().sum(dim=-1).masked_fill(~ok, math.inf)
            nearest_dist, nearest = dist.min(dim=-1)  # first minimum: lower point index
            chosen[start : start + per_chunk] = torch.where(
                torch.isfinite(nearest_dist), nearest, torch.full_like(nearest, -1)
            )
        found = chosen >= 0
        if not bool(found.any()):
            break
        claim_area, claim_index = _smallest_per_point(
            chosen[found], missing[found], areas, num_points, num_gts
        )
        won = claim_index < num_gts
        best_area = torch.where(won, claim_area, best_area)
        best_index = torch.where(won, claim_index, best_index)
    return best_area, best_index


def assign_targets(
    points: Tensor,
    ranges: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    num_classes: int,
    query: Tensor | None = None,
    point_strides: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Labels and box targets of :func:`assign_gt_index`'s assignment (same arguments,
    plus ``gt_labels`` Tensor[M] int64 in [0, num_classes) and ``num_classes`` K).

    Returns:
        labels: Tensor[N] int64, ``num_classes`` for background.
        box_targets: Tensor[N, 4] (l, t, r, b) from ``points`` to the assigned GT; zeros
            for background.
    """
    gt_index = assign_gt_index(points, ranges, gt_boxes, query, point_strides)
    return targets_from_index(points, gt_index, gt_boxes, gt_labels, num_classes)


def targets_from_index(
    points: Tensor, gt_index: Tensor, gt_boxes: Tensor, gt_labels: Tensor, num_classes: int
) -> tuple[Tensor, Tensor]:
    """Labels Tensor[N] (K for background) and (l, t, r, b) targets Tensor[N, 4] (zeros for
    background) of points Tensor[N, 2] assigned to GT ``gt_index`` Tensor[N] (M: none)."""
    num_points = points.shape[0]
    labels = torch.full((num_points,), num_classes, dtype=torch.long, device=points.device)
    box_targets = points.new_zeros((num_points, 4))
    pos_index = (gt_index < gt_boxes.shape[0]).nonzero(as_tuple=True)[0]
    pos_gt = gt_index[pos_index]
    labels[pos_index] = gt_labels.to(device=points.device, dtype=torch.long)[pos_gt]
    box_targets[pos_index] = boxes_to_distances(points[pos_index], gt_boxes.to(points.dtype)[pos_gt])
    return labels, box_targets


def assign_gt_index(
    points: Tensor,
    ranges: Tensor,
    gt_boxes: Tensor,
    query: Tensor | None = None,
    point_strides: Tensor | None = None,
) -> Tensor:
    """FCOS (initial) or FSANet refine assignment of points to ground-truth boxes.

    A probe position (the point itself, or ``query`` when given) is a candidate for a GT
    box when it lies strictly inside it (every distance > 0) and the largest of its four
    distances ``m`` satisfies ``lo <= m <= hi`` for the point's level range (mmdet's
    comparison). Among several candidates the GT of smallest area wins (ties: the lower
    index). No centre sampling.

    Nearest-point fallback (``point_strides`` given; off in the paper's presets): a GT that
    no probe claims (a 2-3 px object can fall between the points of even a stride-4 level)
    takes the nearest free point within one stride of its centre (:func:`_nearest_fallback`).
    Its target may have a component down to minus half a stride; the decoded target is
    still exactly the GT box.

    Initial assignment (``query=None``): the probe is the point.
    Refine assignment: the probe is ``query``, the centre of the point's refined
    prediction; the range test uses the query's distances. The chosen GT gives the label,
    but the regression target is the distance from the ORIGINAL point to that GT, so a
    positive whose point lies outside its GT gets negative components (its decoded target
    is still exactly the GT box).

    Vectorised (no loop over points): probes are sorted along x and only the (probe, GT)
    pairs with the probe inside the GT's x extent are examined, about N * M * (mean GT
    width / image width) pairs; in the worst case (boxes as wide as the image) O(N * M)
    memory, bounded by processing GTs in chunks of about 4M pairs.

    Args:
        points: Tensor[N, 2] (x, y) pixels.
        ranges: Tensor[N, 2] (lo, hi) regress range of each point's level.
        gt_boxes: Tensor[M, 4] (x1, y1, x2, y2) pixels.
        query: Tensor[N, 2] probe positions for the refine assignment, or None.
        point_strides: Tensor[N] stride (pixels) of each point's level, to enable the
            nearest-point fallback; None: plain FCOS / FSANet assignment.

    Returns:
        Tensor[N] int64: the GT each point is assigned to, M for background.
    """
    num_points, num_gts = points.shape[0], gt_boxes.shape[0]
    if query is not None and query.shape != points.shape:
        raise ValueError(f"query has shape {tuple(query.shape)}, points {tuple(points.shape)}")
    if num_gts == 0 or num_points == 0:
        return torch.full((num_points,), num_gts, dtype=torch.long, device=points.device)

    gt_boxes = gt_boxes.to(points.dtype)
    probe = points if query is None else query.to(points.dtype)
    areas = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
    ranges = ranges.to(points.dtype)
    best_area, best_index = _best_boxes(probe, ranges, gt_boxes, areas)
    if point_strides is not None:
        best_area, best_index = _nearest_fallback(
            points, ranges, point_strides.to(points.dtype), gt_boxes, areas, best_area, best_index
        )
    return best_index


def refined_centres(points: Tensor, dist: Tensor) -> Tensor:
    """Centre of each predicted box: ``(x + (r - l) / 2, y + (b - t) / 2)``.

    Args:
        points: Tensor[N, 2] (x, y) pixels.
        dist: Tensor[N, 4] predicted (l, t, r, b) pixels.

    Returns:
        Tensor[N, 2] (x, y) pixels.
    """
    return torch.stack(
        (
            points[:, 0] + (dist[:, 2] - dist[:, 0]) / 2,
            points[:, 1] + (dist[:, 3] - dist[:, 1]) / 2,
        ),
        dim=-1,
    )


def gaussian_centerness(box_targets: Tensor) -> Tensor:
    """FSANet's Gaussian centerness target.

    ``exp(-4 * ((|l - r| / 2) / (l + r))^2 - 4 * ((|t - b| / 2) / (t + b))^2)``; equals 1 at
    the box centre and exp(-2) at a corner. Defined for negative components too (refine
    targets), since ``l + r`` and ``t + b`` are the GT width and height.

    Args:
        box_targets: Tensor[P, 4] (l, t, r, b) pixels.

    Returns:
        Tensor[P] in (0, 1].
    """
    left, top, right, bottom = box_targets.unbind(dim=-1)
    dx = (left - right).abs() / 2 / (left + right)
    dy = (top - bottom).abs() / 2 / (top + bottom)
    return torch.exp(-4 * dx.square() - 4 * dy.square())


def normalise_per_object(centerness: Tensor, object_index: Tensor, num_objects: int) -> Tensor:
    """Centerness targets Tensor[P] divided by the largest one of the same object, so each
    object's best-placed positive gets 1 (``object_index`` Tensor[P] int64 in
    [0, num_objects)). An object whose targets are all 0 (FCOS centerness of a
    nearest-point fallback outside its box, or of points on its border) gets 1 at each of
    its points: the assigner made them its positives and there is nothing to rank them by.

    Why (``ModelConfig.centerness_per_object``, the tiny presets): points are ``stride``
    apart whatever the object's size, so a 2-4 px object's best point sits off its centre
    and its Gaussian target is often under 0.3 (median 0.33 on the example scene's objects
    under 4 px at stride 4, 0.92 for 8-16 px ones). Trained against that, the predicted
    centerness caps the final score (class x centerness) of the smallest objects below any
    useful threshold and gives them almost no box-loss weight; the ranking of points
    within one object, centerness's job, is unchanged.
    """
    if centerness.numel() == 0:
        return centerness
    best = centerness.new_zeros(num_objects)
    best.scatter_reduce_(0, object_index, centerness, reduce="amax")
    scale = best[object_index]
    normalised = centerness / scale.clamp(min=torch.finfo(centerness.dtype).tiny)
    return torch.where(scale > 0, normalised, torch.ones_like(centerness))


def fcos_centerness(box_targets: Tensor) -> Tensor:
    """FCOS centerness target ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``.

    Args:
        box_targets: Tensor[P, 4] (l, t, r, b) pixels, positive for points inside the box.

    Returns:
        Tensor[P] in [0, 1] (a negative ratio, for a point outside, is clamped to 0).
    """
    left, top, right, bottom = box_targets.unbind(dim=-1)
    ratio_x = torch.minimum(left, right) / torch.maximum(left, right)
    ratio_y = torch.minimum(top, bottom) / torch.maximum(top, bottom)
    return (ratio_x.clamp(min=0) * ratio_y.clamp(min=0)).sqrt()
