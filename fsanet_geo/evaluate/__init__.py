"""Evaluation: the AI-TOD protocol on COCO results, model prediction over a dataset,
precision-recall plots, and map-space evaluation of vector layers.

Heavy modules (torch, geopandas, matplotlib) load on first use of the name that needs them.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "EvalResult": "fsanet_geo.evaluate.aitod_protocol",
    "evaluate_coco": "fsanet_geo.evaluate.aitod_protocol",
    "HEADLINE_KEYS": "fsanet_geo.evaluate.aitod_protocol",
    "AREA_RANGES": "fsanet_geo.evaluate.aitod_protocol",
    "predict_dataset": "fsanet_geo.evaluate.predict",
    "evaluate_model": "fsanet_geo.evaluate.predict",
    "evaluate_checkpoint": "fsanet_geo.evaluate.predict",
    "plot_pr_curves": "fsanet_geo.evaluate.plots",
    "MapEvalResult": "fsanet_geo.evaluate.mapspace",
    "MatchCounts": "fsanet_geo.evaluate.mapspace",
    "evaluate_vectors": "fsanet_geo.evaluate.mapspace",
    "EvalRequest": "fsanet_geo.evaluate.evaluation",
    "EvalReport": "fsanet_geo.evaluate.evaluation",
    "run_evaluation": "fsanet_geo.evaluate.evaluation",
    "ScoredArea": "fsanet_geo.evaluate.map_area",
    "match_boxes": "fsanet_geo.evaluate.matching",
    "match_pairs": "fsanet_geo.evaluate.matching",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
