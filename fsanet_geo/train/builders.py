"""What a training run is built from: datasets, their per-epoch loaders, the model
(optionally started from a checkpoint's weights) and the optimiser."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from fsanet_geo.errors import ConfigError, TrainingError
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.finetune import finetune_detector, run_in_channels, run_input_size
from fsanet_geo.train.sampler import SeededItems, epoch_batches, keyed_batches


def build_datasets(config: TrainConfig) -> tuple[Any, Any | None]:
    """``(training set, validation set or None)`` as ``config`` says: training crops of its
    input size at native scale (resized first only with ``config.resize_to``).

    Raises :class:`TrainingError` when the training set has no image with boxes.
    """
    from fsanet_geo.data.dataset import build_dataset

    size = run_input_size(config)
    if config.dataset == "scenes":
        from fsanet_geo.train.scene_data import build_scene_datasets

        return build_scene_datasets(config, size, in_channels=run_in_channels(config), levels=_init_levels(config))
    common = {"data_root": config.data_root, "input_size": size, "resize_to": config.resize_to}
    train_set = build_dataset(
        config.dataset, split=config.train_split, ann=config.train_ann, images=config.train_images,
        train=True, flip_h=config.flip_h, flip_v=config.flip_v, rot90=config.rot90, **common,
    )
    if len(train_set) == 0:
        raise TrainingError("the training set has no images with boxes")
    val_set = None
    if config.validates:
        val_set = build_dataset(
            config.dataset, split=config.val_split or "test", ann=config.val_ann,
            images=config.val_images, train=False, **common,
        )
    return train_set, val_set


def _init_levels(config: TrainConfig) -> Any:
    """The 8-bit levels of the checkpoint a run fine-tunes (its scenes are stretched to them), or None."""
    if not config.init_weights:
        return None
    from fsanet_geo.model.files.checkpoint import read_checkpoint_metadata
    from fsanet_geo.model.files.imagery import imagery_from_metadata

    return imagery_from_metadata(read_checkpoint_metadata(config.init_weights), config.init_weights).levels


def epoch_loader(
    train_set: Any,
    config: TrainConfig,
    *,
    epoch: int,
    skip: int,
    limit: int,
    rank: int,
    world_size: int,
    pin_memory: bool,
) -> DataLoader:
    """This process's batches of ``epoch`` (0-based), at most ``limit`` of them from its
    ``skip``-th on (a resumed run skips those already done). Batches are
    ``(list[Tensor[C, H, W]], list[target dict])``, the same for a given seed whatever
    the number of workers."""
    from fsanet_geo.data.dataset import collate

    batches = epoch_batches(len(train_set), config.batch_size, seed=config.seed, epoch=epoch,
                            rank=rank, world_size=world_size)
    return DataLoader(
        SeededItems(train_set, config.seed),
        batch_sampler=keyed_batches(batches[skip : skip + limit], epoch),
        collate_fn=collate,
        num_workers=config.num_workers,
        pin_memory=pin_memory,
    )


def build_detector(config: TrainConfig, class_names: list[str]) -> nn.Module:
    """The model preset ``config.model`` for ``class_names`` with ``config``'s overrides,
    input size, pretrained backbone and (fine-tuning) initial weights; on the CPU.

    With ``init_weights`` the model is the checkpoint's architecture started from its
    weights, classifier rows matched by class name, and carries the report as
    ``model.class_transfer`` (:func:`~fsanet_geo.train.finetune.finetune_detector`).
    A new run from random init of a preset with frozen BatchNorm is refused
    (:func:`~fsanet_geo.model.presets.check_trainable_from_scratch`)."""
    from fsanet_geo.model.presets import build_model, check_trainable_from_scratch, preset_config

    overrides = dict(config.model_overrides)
    if config.input_size is not None:
        overrides["input_size"] = config.input_size
    if config.init_weights:  # every weight comes from the checkpoint: no pretrained backbone needed
        return finetune_detector(config, class_names, overrides)
    pretrained = config.pretrained_backbone
    if isinstance(pretrained, str) and pretrained.lower() == "imagenet":
        pretrained = True
    if not (pretrained or config.resume or config.allow_frozen_norm_from_scratch):
        check_trainable_from_scratch(preset_config(config.model, len(class_names), class_names, **overrides))
    return build_model(config.model, num_classes=len(class_names), class_names=class_names,
                       pretrained_backbone=pretrained, **overrides)


def build_optimizer(config: TrainConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW at rate ``lr``; weight decay on every trainable parameter."""
    if not params:
        raise ConfigError(f"model {config.model} has no trainable parameters")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
