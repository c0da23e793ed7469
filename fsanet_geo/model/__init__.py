"""fsanet_geo.model: FSANet (and its FCOS ablation variants) in plain PyTorch + torchvision.

Main names: :func:`build_model`, :func:`list_presets`, :class:`FSANet`, :class:`ModelConfig`,
:func:`save_checkpoint`, :func:`load_model`, :func:`read_checkpoint_config`.

Importing this package is light; torch-heavy modules load on first use of a name.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "FSANet": "fsanet_geo.model.detector",
    "HeadOutputs": "fsanet_geo.model.outputs",
    "ModelConfig": "fsanet_geo.model.config",
    "build_model": "fsanet_geo.model.presets",
    "list_presets": "fsanet_geo.model.presets",
    "preset_config": "fsanet_geo.model.presets",
    "load_model": "fsanet_geo.model.files.checkpoint",
    "read_checkpoint_config": "fsanet_geo.model.files.checkpoint",
    "read_checkpoint_metadata": "fsanet_geo.model.files.checkpoint",
    "save_checkpoint": "fsanet_geo.model.files.checkpoint",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
