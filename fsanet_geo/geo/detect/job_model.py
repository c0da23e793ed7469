"""What a detection job needs of its model before and after loading it.

:func:`checkpoint_stand_in` reads a checkpoint's config and class names from its metadata
only (no weights), so that scene checks that need only metadata (no CRS, band count) come
before a model load that can take seconds; :func:`apply_score_threshold` sets the score
threshold a run asked for (``fsanet detect --score-thr``) on a loaded model;
:func:`uncalibrated_threshold_note` says when the checkpoint's own threshold was never
calibrated (a run trained without validation keeps its preset's 0.05).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CheckpointStandIn:
    """A predictor-shaped object with a checkpoint's ``config`` and ``class_names`` and no
    weights; it only serves the checks made before any pixel is read, never called."""

    def __init__(self, config: Any, imagery: Any = None, metadata: dict[str, str] | None = None) -> None:
        self.config = config
        self.class_names = list(config.class_names)
        self.imagery = imagery
        self.metadata = metadata or {}

    def __call__(self, images: Any) -> list[dict[str, Any]]:  # pragma: no cover - never run
        raise TypeError("a checkpoint stand-in has no weights; load the model to predict")


def checkpoint_stand_in(weights: Path) -> CheckpointStandIn | None:
    """The stand-in of checkpoint ``weights``, or None when its metadata does not read
    (the model load then reports why, in its own words)."""
    from fsanet_geo.errors import FsanetError
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config, read_checkpoint_metadata
    from fsanet_geo.model.files.imagery import imagery_from_metadata

    try:
        metadata = read_checkpoint_metadata(weights)
        return CheckpointStandIn(read_checkpoint_config(weights), imagery_from_metadata(metadata, str(weights)),
                                 metadata)
    except (FsanetError, OSError, ValueError):
        return None


def apply_score_threshold(model: Any, score_thr: float | None) -> None:
    """Replace the loaded model's own score thresholds (its post-processor's, and its config's,
    calibrated per-class cuts included) by ``score_thr`` for this run; None keeps the
    checkpoint's. Other predictors are left alone (the run's ``DetectSettings.score_thr``
    filters their outputs)."""
    if score_thr is None:
        return
    from fsanet_geo.model.detector import set_score_thresholds

    set_score_thresholds(model, float(score_thr))


def uncalibrated_threshold_note(weights: Path, stand_in: CheckpointStandIn | None) -> str | None:
    """A one-line note when checkpoint ``weights`` (its ``stand_in``: config and metadata) holds a
    score threshold nobody calibrated, else None (calibrated, set by hand, or no stand-in: an
    ONNX file or unreadable metadata)."""
    from fsanet_geo.model.files.calibration import is_calibrated

    if stand_in is None or is_calibrated(stand_in.metadata):
        return None
    return (f"{weights.name}'s score threshold {stand_in.config.score_thr:g} was not calibrated (its training run "
            f"did not validate): expect many false detections; pass --score-thr, or store one with "
            f"'fsanet model set-threshold {weights} VALUE'")
