"""What a detection job needs of its model before and after loading it.

:func:`checkpoint_stand_in` reads a checkpoint's config and class names from its metadata
only (no weights), so that scene checks that need only metadata (no CRS, band count) come
before a model load that can take seconds; :func:`apply_score_threshold` sets the score
threshold a run asked for (``fsanet detect --score-thr``) on a loaded model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


class CheckpointStandIn:
    """A predictor-shaped object with a checkpoint's ``config`` and ``class_names`` and no
    weights; it only serves the checks made before any pixel is read, never called."""

    def __init__(self, config: Any, imagery: Any = None) -> None:
        self.config = config
        self.class_names = list(config.class_names)
        self.imagery = imagery

    def __call__(self, images: Any) -> list[dict[str, Any]]:  # pragma: no cover - never run
        raise TypeError("a checkpoint stand-in has no weights; load the model to predict")


def checkpoint_stand_in(weights: Path) -> CheckpointStandIn | None:
    """The stand-in of checkpoint ``weights``, or None when its metadata does not read
    (the model load then reports why, in its own words)."""
    from fsanet_geo.errors import FsanetError
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config, read_checkpoint_metadata
    from fsanet_geo.model.files.imagery import imagery_from_metadata

    try:
        return CheckpointStandIn(read_checkpoint_config(weights),
                                 imagery_from_metadata(read_checkpoint_metadata(weights), str(weights)))
    except (FsanetError, OSError, ValueError):
        return None


def apply_score_threshold(model: Any, score_thr: float | None) -> None:
    """Replace the loaded model's own score threshold (its post-processor's, and its config's)
    by ``score_thr`` for this run; None keeps the checkpoint's. Other predictors are left alone
    (the run's ``DetectSettings.score_thr`` filters their outputs)."""
    if score_thr is None:
        return
    postprocess = getattr(model, "postprocessor", None)
    if postprocess is not None and hasattr(postprocess, "score_thr"):
        postprocess.score_thr = float(score_thr)
    config = getattr(model, "config", None)
    if dataclasses.is_dataclass(config) and hasattr(config, "score_thr"):  # a frozen ModelConfig
        model.config = dataclasses.replace(config, score_thr=float(score_thr))
