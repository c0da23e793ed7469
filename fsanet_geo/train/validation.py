"""What a training run reports at each validation: AI-TOD metrics, the calibrated score
cuts (the F1-best threshold at IoU 0.5, overall and per class), and precision and recall per
class at those cuts, as ``fsanet eval`` counts them in map space."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
from fsanet_geo.evaluate.class_counts import per_class_counts, total_counts
from fsanet_geo.evaluate.predict import predict_dataset
from fsanet_geo.evaluate.score_calibration import MATCH_IOU, calibrate
from fsanet_geo.model.detector import set_score_thresholds

PREDICTION_FLOOR = 0.05
"""Class-score cut validation predicts at (the presets' own): AP and the calibration need
the low-scoring detections too, whatever cut an earlier validation set."""


@contextlib.contextmanager
def predicting_at_floor(model: nn.Module, floor: float = PREDICTION_FLOOR) -> Iterator[None]:
    """Within the block, ``model`` keeps every detection over ``min(floor, its own cut)`` (no
    per-class cuts); its own cuts come back after."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "class_score_thr"):
        yield
        return
    saved = (config.score_thr, config.class_score_thr)
    set_score_thresholds(model, min(floor, config.score_thr))
    try:
        yield
    finally:
        set_score_thresholds(model, *saved)


def validation_metrics(model: nn.Module, dataset: Any, *, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Metrics of ``model`` on ``dataset`` (items and ``coco`` ground truth as
    :func:`~fsanet_geo.evaluate.predict.evaluate_model` takes them; images larger than a
    tile are tiled like ``detect``).

    Returns:
        the AI-TOD stats (``AP``, ``AP50``, ... fractions); ``calibration`` (the F1-best cuts,
        :meth:`~fsanet_geo.evaluate.score_calibration.Calibration.to_dict`, None when nothing
        matched); ``score_thr`` (the overall cut, else the model's own), ``class_score_thr``
        (one cut per class in label order, or None), overall ``precision``/``recall`` and
        ``classes``: ``{name: {tp, fp, fn, precision, recall, f1}}`` at those cuts.
    """
    gt = getattr(dataset, "coco")
    gt = getattr(gt, "dataset", gt)
    with predicting_at_floor(model):
        dets = predict_dataset(model, dataset, batch_size=batch_size, device=device)
    metrics: dict[str, Any] = {k: float(v) for k, v in evaluate_coco(gt, dets).stats.items()}
    calibration = calibrate(gt, dets, iou=MATCH_IOU)
    names = [str(c["name"]) for c in gt.get("categories", [])]
    if calibration is not None:
        score_thr, cuts = calibration.overall.score_thr, calibration.thresholds(names)
    else:
        score_thr, cuts = float(getattr(getattr(model, "config", None), "score_thr", PREDICTION_FLOOR)), None
    cut_of = {int(c["id"]): (cuts[i] if cuts else score_thr) for i, c in enumerate(gt.get("categories", []))}
    kept = [d for d in dets if float(d["score"]) >= cut_of.get(int(d["category_id"]), score_thr)]
    counts = per_class_counts(gt, kept, score_thr=0.0, iou=MATCH_IOU)
    total = total_counts(counts)
    metrics.update(score_thr=score_thr, class_score_thr=list(cuts) if cuts else None,
                   calibration=calibration.to_dict() if calibration else None,
                   precision=total.precision, recall=total.recall,
                   classes={name: c.to_dict() for name, c in counts.items()})
    return metrics


def apply_calibration(model: nn.Module, metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Give ``model`` the cuts a validation found (:func:`validation_metrics`'s ``metrics``):
    per class on the final score, their minimum on the class score. Returns the calibration
    record (for the checkpoints' ``calibration`` metadata), None when it found nothing (the
    model's cuts are left alone)."""
    record = metrics.get("calibration")
    cuts = metrics.get("class_score_thr")
    if not record or not cuts:
        return None
    cuts = [min(float(v), MAX_CUT) for v in cuts]
    set_score_thresholds(model, min(cuts), cuts)
    return dict(record)


MAX_CUT = 0.999
"""The highest cut stored (a model config's thresholds lie in [0, 1))."""
