"""Object counts per class and AI-TOD size range, for reports such as ``fsanet data check``.

A box's size is the square root of its area in pixels; the ranges are the AI-TOD protocol's
(:data:`fsanet_geo.evaluate.aitod_protocol.AREA_RANGES`): very tiny < 8 px, tiny 8-16 px,
small 16-32 px, medium >= 32 px, half-open so that they partition the boxes.

Letters: N = boxes, C = classes.
"""

from __future__ import annotations

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
