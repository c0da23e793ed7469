"""Fine-tuning runs (``init_weights``, ``fsanet train --init-weights``): the preset a run
trains and the model it starts from.

A run started from a checkpoint trains that checkpoint's preset and architecture
(``--model`` may be left out; another preset is refused) for the training set's classes,
whose classifier rows are matched to the checkpoint's by name
(:mod:`fsanet_geo.model.files.class_transfer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fsanet_geo.model.files.preset_choice import checkpoint_config, preset_for_run

if TYPE_CHECKING:
    from fsanet_geo.model.detector import FSANet
    from fsanet_geo.train.config import TrainConfig


def run_input_size(config: TrainConfig) -> int:
    """The side of the run's training crops (pixels): ``input_size`` if given, else the model
    override's, else the ``init_weights`` checkpoint's, else the preset's."""
    if config.input_size is not None:
        return int(config.input_size)
    if "input_size" in config.model_overrides:
        return int(config.model_overrides["input_size"])
    if config.init_weights:
        return int(checkpoint_config(config.init_weights).input_size)
    from fsanet_geo.model.presets import preset_config

    return int(preset_config(str(config.model)).input_size)


def run_in_channels(config: TrainConfig) -> int:
    """The model's input channels: the model override's, else the ``init_weights`` checkpoint's,
    else the preset's (a scene run reads that many bands, or refuses a --bands of another count)."""
    if "in_channels" in config.model_overrides:
        return int(config.model_overrides["in_channels"])
    if config.init_weights:
        return int(checkpoint_config(config.init_weights).in_channels)
    from fsanet_geo.model.presets import preset_config

    return int(preset_config(str(config.model)).in_channels)


def finetune_detector(config: TrainConfig, class_names: list[str], overrides: dict[str, Any]) -> FSANet:
    """The model of a run with ``init_weights``: the checkpoint's architecture for
    ``class_names`` with ``overrides`` (:func:`~fsanet_geo.model.files.class_transfer.finetune_config`),
    started from its weights; the :class:`~fsanet_geo.model.files.class_transfer.ClassTransfer`
    report is its ``class_transfer`` attribute. On the CPU.

    Raises :class:`ConfigError` when ``config.model`` is another preset than the
    checkpoint's or its tensors do not fit (the tensor and both shapes named)."""
    from fsanet_geo.model.files.class_transfer import finetune_config, load_with_class_transfer
    from fsanet_geo.model.detector import FSANet

    path = str(config.init_weights)
    preset_for_run(config.model, path)  # the checkpoint's preset, a known one
    model = FSANet(finetune_config(checkpoint_config(path), class_names, **overrides))
    model.class_transfer = load_with_class_transfer(model, path)
    return model
