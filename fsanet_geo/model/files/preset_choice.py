"""The preset a training run trains: the one named, else the initial weights' own, else the paper's.

Light (no torch at import): the training config resolves its
``model`` with it when the config is built.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from fsanet_geo.errors import ConfigError

if TYPE_CHECKING:
    from fsanet_geo.model.config import ModelConfig

DEFAULT_MODEL = "fsanet_r50"
"""The preset of a run given neither a model nor initial weights (the paper's)."""

SCRATCH_MODEL = "fsanet_r18_tiny"
"""The preset of a scene run given no model, initial weights nor pretrained backbone: fsanet_r50
keeps its backbone's BatchNorm frozen and cannot learn from random init; this one can (the demo
model's preset)."""


def preset_for_run(model: str | None, init_weights: str | os.PathLike[str] | None, *, scratch: bool = False) -> str:
    """The preset a run trains: ``model`` when given, else the ``init_weights``
    checkpoint's, else :data:`SCRATCH_MODEL` for a run that starts from random weights
    (``scratch``: a scene run without a pretrained backbone), else :data:`DEFAULT_MODEL`.

    Raises :class:`ConfigError` when ``model`` names another preset than the checkpoint's or
    the checkpoint has no known preset, :class:`CheckpointError` for an unreadable checkpoint.
    """
    if not init_weights:
        return model or (SCRATCH_MODEL if scratch else DEFAULT_MODEL)
    from fsanet_geo.model.files.class_transfer import check_finetunable, preset_mismatch

    path = os.fspath(init_weights)
    source = checkpoint_config(path)
    if model is not None and model != source.preset:
        raise ConfigError(preset_mismatch(path, source.preset, model))
    check_finetunable(source, path)
    return source.preset


def checkpoint_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The ``ModelConfig`` stored in the checkpoint at ``path`` (its header only)."""
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config

    return read_checkpoint_config(path)
