"""Training: :func:`train` a detector from a :class:`TrainConfig` (the engine of ``fsanet train``).

Importing this package is light; torch-heavy modules load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "TrainConfig": "fsanet_geo.train.config",
    "Recipe": "fsanet_geo.train.config",
    "recipe_for": "fsanet_geo.train.config",
    "lr_at": "fsanet_geo.train.schedule",
    "TrainEvent": "fsanet_geo.train.events",
    "TrainResult": "fsanet_geo.train.events",
    "train": "fsanet_geo.train.engine",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fsanet_geo.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
