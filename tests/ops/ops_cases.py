"""Random boxes shared by the tests of fsanet_geo.ops."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def random_boxes(seed: int, n: int, classes: int) -> tuple[Tensor, Tensor, Tensor]:
    """n float64 boxes on a 60 px square (integer corners, sides 1-19 px), distinct scores
    in (0, 1) and labels in [0, classes)."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 40, (n, 2), generator=gen).double()
    wh = torch.randint(1, 20, (n, 2), generator=gen).double()
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = (torch.randperm(n, generator=gen).double() + 1) / (n + 1)  # distinct
    labels = torch.randint(0, classes, (n,), generator=gen)
    return boxes, scores, labels


def random_numpy_boxes(rng: np.random.Generator, k: int, side: int = 100, max_size: int = 40) -> np.ndarray:
    """k float64 boxes with integer corners in [0, side + max_size), sides in [0, max_size)
    (zero-area boxes included)."""
    xy = rng.integers(0, side, (k, 2)).astype(float)
    return np.c_[xy, xy + rng.integers(0, max_size, (k, 2))]
