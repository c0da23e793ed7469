"""Evaluation: the AI-TOD protocol on COCO results, model prediction over a dataset,
precision-recall plots, and map-space evaluation of vector layers.

Heavy modules (torch, geopandas, matplotlib) load on first use of the name that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "EvalResult": "fsanet_geo.evaluate.aitod_protocol",
    "evaluate_coco": "fsanet_geo.evaluate.aitod_protocol",
    "HEADLINE_KEYS": "fsanet_geo.evaluate.aitod_protocol",
    "AREA_RANGES": "fsanet_geo.evaluate.aitod_protocol",
    "predict_dataset": "fsanet_geo.evaluate.predict",
    "evaluate_model": "fsanet_geo.evaluate.predict",
    "plot_pr_curves": "fsanet_geo.evaluate.plots",
    "MapEvalResult": "fsanet_geo.evaluate.mapspace",
    "MatchCounts": "fsanet_geo.evaluate.mapspace",
    "evaluate_vectors": "fsanet_geo.evaluate.mapspace",
    "match_boxes": "fsanet_geo.evaluate.mapspace",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fsanet_geo.evaluate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
