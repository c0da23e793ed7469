"""Pairs of overlapping boxes within one set of tensors, by a sort-and-sweep along x.

Letters: D = boxes, E = pairs found. Boxes are Tensor[D, 4] (x1, y1, x2, y2), any unit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fsanet_geo.ops.overlap import OverlapMetric, box_overlap

# Most candidate pairs enumerated at once (memory bound).
MAX_PAIRS_PER_CHUNK = 1 << 22


def overlap_pairs_within(
    boxes: Tensor,
    min_overlap: float,
    groups: Tensor | None = None,
    *,
    metric: OverlapMetric = "iou",
    max_pairs_per_chunk: int = MAX_PAIRS_PER_CHUNK,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every unordered pair of boxes of one group whose overlap is above ``min_overlap``.

    Boxes are sorted by (group, x1); each box is only compared with the boxes of its group
    whose x1 falls inside its x extent, so the work is proportional to the number of
    x-overlapping pairs (small for tiny objects), not D^2.

    Args:
        boxes: Tensor[D, 4] xyxy.
        min_overlap: overlap above which a pair is reported (>= 0).
        groups: Tensor[D] int64 group (class) ids; pairs never cross groups. None: one group.
        metric: ``"iou"`` or ``"ios"`` (:func:`fsanet_geo.ops.overlap.box_overlap`).
        max_pairs_per_chunk: candidate pairs examined at once (a memory bound; the result
            does not depend on it).

    Returns:
        first, second: Tensor[E] int64 indices (first != second), and overlap: Tensor[E].
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
    firsts, seconds, overlaps = [], [], []
    cumulative = torch.cumsum(counts, 0)
    row = 0
    while row < num:
        # Rows [row, stop) hold at most max_pairs_per_chunk candidates (or one row if more).
        before = int(cumulative[row - 1]) if row > 0 else 0
        stop = int(torch.searchsorted(cumulative, before + max_pairs_per_chunk, side="right"))
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
            overlap = box_overlap(sorted_boxes[rows], sorted_boxes[cols], metric)
            keep = overlap > min_overlap
            firsts.append(order[rows[keep]])
            seconds.append(order[cols[keep]])
            overlaps.append(overlap[keep])
        row = stop
    if not firsts:
        return empty, empty, boxes.new_zeros(0)
    return torch.cat(firsts), torch.cat(seconds), torch.cat(overlaps)
