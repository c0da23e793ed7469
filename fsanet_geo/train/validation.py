"""What a training run reports at each validation: AI-TOD metrics and, at the model's score
threshold, precision and recall per class (IoU 0.5), as ``fsanet eval-map`` counts them."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
from fsanet_geo.evaluate.class_counts import per_class_counts, total_counts
from fsanet_geo.evaluate.predict import predict_dataset

MATCH_IOU = 0.5
"""IoU at which a detection counts as found for the per-class precision and recall."""


def validation_metrics(model: nn.Module, dataset: Any, *, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Metrics of ``model`` on ``dataset`` (items and ``coco`` ground truth as
    :func:`~fsanet_geo.evaluate.predict.evaluate_model` takes them; images larger than a
    tile are tiled like ``detect``).

    Returns:
        the AI-TOD stats (``AP``, ``AP50``, ... fractions), ``score_thr``, overall
        ``precision``/``recall`` and ``classes``: ``{name: {tp, fp, fn, precision, recall, f1}}``.
    """
    gt = getattr(dataset, "coco")
    gt = getattr(gt, "dataset", gt)
    dets = predict_dataset(model, dataset, batch_size=batch_size, device=device)
    metrics: dict[str, Any] = {k: float(v) for k, v in evaluate_coco(gt, dets).stats.items()}
    score_thr = float(getattr(getattr(model, "config", None), "score_thr", 0.05))
    counts = per_class_counts(gt, dets, score_thr=score_thr, iou=MATCH_IOU)
    total = total_counts(counts)
    metrics.update(score_thr=score_thr, precision=total.precision, recall=total.recall,
                   classes={name: c.to_dict() for name, c in counts.items()})
    return metrics
