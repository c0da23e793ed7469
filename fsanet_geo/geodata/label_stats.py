"""Object counts per class and AI-TOD size range, the size percentiles and the preset built for
them, for reports such as ``fsanet data check``.

A box's size is the square root of its area in pixels; the ranges are the AI-TOD protocol's
(:data:`fsanet_geo.evaluate.aitod_protocol.AREA_RANGES`): very tiny < 8 px, tiny 8-16 px,
small 16-32 px, medium >= 32 px, half-open so that they partition the boxes.

Letters: N = boxes, C = classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from fsanet_geo.evaluate.aitod_protocol import AREA_KEYS, AREA_RANGES
from fsanet_geo.geodata.types import LabelCounts, LabelSet

SIZE_RANGES: tuple[str, ...] = tuple(AREA_KEYS)
"""The size ranges in order: verytiny, tiny, small, medium."""


def size_range_counts(boxes: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """int64 [C, 4]: boxes [N, 4] (xyxy pixels) of each label [N] per size range of :data:`SIZE_RANGES`."""
    counts = np.zeros((num_classes, len(SIZE_RANGES)), np.int64)
    if len(boxes) == 0:
        return counts
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    upper = np.array([AREA_RANGES[k][1] for k in SIZE_RANGES[:-1]])
    ranges = np.searchsorted(upper, area, side="right")
    np.add.at(counts, (labels.astype(np.int64), ranges), 1)
    return counts


def set_size_range_counts(label_set: LabelSet) -> np.ndarray:
    """int64 [C, 4]: :func:`size_range_counts` summed over the scenes of ``label_set``."""
    total = np.zeros((len(label_set.class_names), len(SIZE_RANGES)), np.int64)
    for scene in label_set.scenes:
        total += size_range_counts(scene.boxes, scene.labels, len(label_set.class_names))
    return total


def total_counts(label_set: LabelSet) -> LabelCounts:
    """The scenes' :class:`LabelCounts` added up."""
    total = LabelCounts()
    for scene in label_set.scenes:
        for key, value in scene.counts.to_dict().items():
            setattr(total, key, getattr(total, key) + value)
    return total


@dataclass(frozen=True)
class SideStats:
    """Object sizes of a label set: the square root of each box's area, pixels (N boxes)."""

    count: int
    p10: float
    median: float
    p90: float

    def to_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "p10_px": self.p10, "median_px": self.median, "p90_px": self.p90}


PRESET_SIDES: tuple[tuple[str, float], ...] = (("fsanet_r18_tiny", 16.0), ("fsanet_r18_medium", 100.0),
                                               ("fsanet_r50", math.inf))
"""Presets by the object size (median side, pixels) they are built for, each up to its bound:
``fsanet_r18_tiny`` (P2-P4, strides 4/8/16) under 16 px, ``fsanet_r18_medium`` (P3-P5) 16-100 px,
and beyond, the paper's ``fsanet_r50`` (P3-P5, width 256; needs ImageNet or fine-tuning weights)."""


def box_side_stats(boxes: list[np.ndarray]) -> SideStats | None:
    """10th percentile, median and 90th percentile of the sides of boxes (arrays [N, 4] xyxy
    pixels); None without a box."""
    sides = [np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])) for b in boxes]
    every = np.concatenate(sides) if sides else np.zeros(0)
    if len(every) == 0:
        return None
    p10, median, p90 = (float(v) for v in np.percentile(every, [10, 50, 90]))
    return SideStats(len(every), p10, median, p90)


def side_stats(label_set: LabelSet) -> SideStats | None:
    """:func:`box_side_stats` of the kept boxes of every scene of ``label_set``."""
    return box_side_stats([scene.boxes for scene in label_set.scenes])


def preset_for_side(median: float) -> str:
    """The preset of :data:`PRESET_SIDES` built for objects whose median side is ``median`` pixels."""
    return next(name for name, upper in PRESET_SIDES if median < upper)


PRESET_REASONS = {"fsanet_r18_tiny": "built for objects under 16 px", "fsanet_r18_medium": "built for 16-100 px objects",
                  "fsanet_r50": "objects over 100 px: the paper's model, with --pretrained-backbone"}
"""Why :func:`preset_for_side` names each preset (shown with it)."""


def label_check_summary(label_set: LabelSet) -> dict[str, Any]:
    """Every figure of ``fsanet data check --scene/--labels`` as one JSON-safe document."""
    sizes = set_size_range_counts(label_set)
    sides = side_stats(label_set)
    preset = None if sides is None else preset_for_side(sides.median)
    return {
        "scenes": [{"scene": str(s.info.path), "labels": str(s.source.labels), "layer": s.source.layer,
                    "split": s.source.split, **s.counts.to_dict()} for s in label_set.scenes],
        "total": total_counts(label_set).to_dict(),
        "classes": {name: dict(zip((*SIZE_RANGES, "total"), (*row, sum(row))))
                    for name, row in zip(label_set.class_names, sizes.tolist())},
        "object_size": None if sides is None else sides.to_dict(),
        "preset": preset,
        "preset_reason": None if preset is None else PRESET_REASONS[preset],
    }
