"""The rules of greedy (soft-)NMS shared by post-processing and the seam merge.

Greedy NMS repeatedly picks the box of highest priority and lets it act on every box it
*interacts* with (overlap strictly above :func:`interaction_threshold`): hard NMS removes
them, soft-NMS multiplies their scores by :func:`soft_decay` and drops those that fall
below a minimum score. Overlaps come from :mod:`fsanet_geo.ops.overlap`. Works on numpy
arrays and torch tensors alike, except :func:`priority_order` (numpy).
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

from fsanet_geo.errors import ConfigError
from fsanet_geo.ops.overlap import OVERLAP_METRICS, array_module

NmsMethod = Literal["hard", "linear", "gaussian"]
NMS_METHODS: tuple[NmsMethod, ...] = ("hard", "linear", "gaussian")

Overlaps = TypeVar("Overlaps")  # np.ndarray or torch.Tensor


def check_nms_options(method: str, threshold: float, sigma: float, metric: str = "iou") -> None:
    """Raise :class:`ConfigError` for an unknown method or metric, a threshold outside
    [0, 1] or a Gaussian width that is not positive."""
    if method not in NMS_METHODS:
        raise ConfigError(f"unknown NMS method {method!r}: use one of {', '.join(NMS_METHODS)}")
    if metric not in OVERLAP_METRICS:
        raise ConfigError(f"unknown overlap metric {metric!r}: use one of {', '.join(OVERLAP_METRICS)}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"NMS overlap threshold must be in [0, 1], got {threshold}")
    if sigma <= 0:
        raise ConfigError(f"soft-NMS sigma must be positive, got {sigma}")


def interaction_threshold(method: NmsMethod, threshold: float) -> float:
    """Two boxes interact (suppress or decay) when their overlap is strictly above this:
    the threshold for hard and linear NMS, 0 for Gaussian soft-NMS (any overlap decays)."""
    return 0.0 if method == "gaussian" else threshold


def soft_decay(overlap: Overlaps, method: NmsMethod, threshold: float, sigma: float) -> Overlaps:
    """Soft-NMS score multipliers of boxes with the given overlaps with the picked box.

    ``"linear"``: ``1 - overlap`` above ``threshold``, 1 otherwise; ``"gaussian"``:
    ``exp(-overlap^2 / sigma)`` (no threshold). Bodla et al. 2017, mmcv's semantics.
    """
    xp = array_module(overlap)
    if method == "linear":
        return xp.where(overlap > threshold, 1.0 - overlap, 1.0)
    return xp.exp(-(overlap * overlap) / sigma)


def priority_order(
    scores: np.ndarray, *tie_keys: np.ndarray, whole: np.ndarray | None = None
) -> np.ndarray:
    """Indices [N] from the first box greedy NMS picks to the last (before any decay).

    Priority: ``whole`` (bool [N], not truncated by a tile edge) first when given, then the
    higher score, then each of ``tie_keys`` ascending (the first the most significant),
    then the lower index. Post-processing uses scores and index only.
    """
    keys = [*reversed(tie_keys), -scores]
    if whole is not None:
        keys.append(~whole)
    return np.lexsort(keys)
