"""Reading what a predictor returns for one tile, with a clear error when it breaks the contract.

The contract (:data:`~fsanet_geo.geo.settings.Predictor`): one dict per tile with ``boxes``
[N, 4] xyxy in tile pixels, ``scores`` [N] and ``labels`` [N] 0-based. Each value may be a
torch tensor, a numpy array or a (nested) list of numbers; anything else raises a
:class:`TypeError` that names the contract, instead of an ``AttributeError`` deep inside.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

CONTRACT = ("a predictor must return one dict per tile with 'boxes' [N, 4] xyxy tile pixels, "
            "'scores' [N] and 'labels' [N] (0-based), each a torch tensor, numpy array or list")

_SHAPES = {"boxes": (-1, 4), "scores": (-1,), "labels": (-1,)}


class PredictorWarning(UserWarning):
    """A predictor output that is used, but likely not what its author meant."""


def output_array(output: Any, key: str, dtype: type) -> np.ndarray:
    """``output[key]`` as a numpy array of ``dtype``, shaped as the contract says.

    Raises :class:`TypeError` naming the contract for a non-dict output, a missing key or a
    value that is not a tensor, array or list of numbers.
    """
    if not isinstance(output, Mapping):
        raise TypeError(f"{CONTRACT}; got {type(output).__name__}")
    if key not in output:
        raise TypeError(f"{CONTRACT}; the dict has no {key!r} (keys: {', '.join(map(str, output))})")
    value = output[key]
    if hasattr(value, "detach"):  # a torch tensor, on any device
        import torch

        value = value.detach().to("cpu", torch.float64 if value.dtype.is_floating_point else None).numpy()
    elif not isinstance(value, (np.ndarray, list, tuple)):
        raise TypeError(f"{CONTRACT}; {key!r} is a {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=dtype)
        return array.reshape(_SHAPES[key])
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{CONTRACT}; {key!r} does not read as numbers of that shape: {exc}") from exc


def warn_unknown_labels(labels: np.ndarray, class_names: list[str], warned: set[int]) -> None:
    """Warn once per label (``warned`` keeps those already reported) for labels at or beyond
    ``len(class_names)``: they are written as ``class_<label>``."""
    if not class_names or labels.size == 0:
        return
    new = sorted({int(v) for v in labels[labels >= len(class_names)]} - warned)
    if new:
        warned.update(new)
        warnings.warn(f"the predictor returned label(s) {', '.join(map(str, new))} beyond its "
                      f"{len(class_names)} class_names; written as "
                      f"{', '.join(f'class_{v}' for v in new)}", PredictorWarning, stacklevel=3)
