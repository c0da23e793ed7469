"""The imagery a training run learns from, recorded in its checkpoints: ground sample
distance (given, metres per pixel) and the 8-bit levels of its images (measured).

``fsanet detect`` stretches a non-8-bit scene so that its 2nd and 98th percentiles land on
these levels (:mod:`fsanet_geo.geo.pixels.stretch`): the model then meets the contrast it was
trained on, instead of a 0..255 stretch that can be twice as contrasted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from fsanet_geo.data.dataset import DetectionDataset, read_image
from fsanet_geo.geo.pixels.stretch import image_levels
from fsanet_geo.model.files.imagery import ImageryProfile

LEVEL_IMAGES = 64
"""Training images (evenly spaced over the set, so the same ones on every run) measured."""


def sampled_images(dataset: DetectionDataset, count: int = LEVEL_IMAGES) -> Iterator[np.ndarray]:
    """Up to ``count`` images of ``dataset`` as uint8 [C, H, W], evenly spaced, as read for training."""
    n = len(dataset.records)
    for index in sorted({int(i) for i in np.linspace(0, n - 1, num=min(count, n))} if n else set()):
        yield read_image(dataset.records[index].path).numpy().astype(np.uint8)


def training_imagery(dataset: Any, gsd: float | None, count: int = LEVEL_IMAGES) -> ImageryProfile:
    """GSD ``gsd`` (None: the dataset's own ``gsd``, else unknown) and the 2-98 % levels per band of
    ``count`` of ``dataset``'s images (a scene set's chips through its ``level_images``)."""
    images = dataset.level_images(count) if hasattr(dataset, "level_images") else sampled_images(dataset, count)
    low, high = image_levels(images, percentiles=(2.0, 98.0))
    if gsd is None:
        gsd = getattr(dataset, "gsd", None)
    bands = getattr(dataset, "bands", None)  # a scene set trained on --bands records them
    return ImageryProfile(gsd=gsd, percentiles=(2.0, 98.0), low=tuple(low), high=tuple(high),
                          bands=tuple(bands) if bands else None)
