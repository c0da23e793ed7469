"""Training: :func:`train` a detector from a :class:`TrainConfig` (the engine of ``fsanet train``).

Importing this package is light; torch-heavy modules load on first use.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
