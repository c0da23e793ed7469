"""fsanet_geo.model: FSANet (and its FCOS ablation variants) in plain PyTorch + torchvision.

Main names: :func:`build_model`, :func:`list_presets`, :class:`FSANet`, :class:`ModelConfig`,
:func:`save_checkpoint`, :func:`load_model`, :func:`read_checkpoint_config`.
"""

from __future__ import annotations

from fsanet_geo.model.checkpoint import (
    load_model,
    read_checkpoint_config,
    read_checkpoint_metadata,
    save_checkpoint,
)
from fsanet_geo.model.config import ModelConfig
from fsanet_geo.model.detector import FSANet
from fsanet_geo.model.outputs import HeadOutputs
from fsanet_geo.model.presets import build_model, list_presets, preset_config

__all__ = [
    "FSANet",
    "HeadOutputs",
    "ModelConfig",
    "build_model",
    "list_presets",
    "load_model",
    "preset_config",
    "read_checkpoint_config",
    "read_checkpoint_metadata",
    "save_checkpoint",
]
