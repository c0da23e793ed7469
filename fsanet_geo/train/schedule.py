"""Learning-rate schedule: linear warmup, then step decay by epoch (the paper's recipe).

Follows MMDetection 2.x's ``lr_config = dict(policy='step', warmup='linear', ...)``:
the step factor depends on the 0-based epoch of the iteration (``steps=(8, 11)`` means
epochs 9..11 run at ``gamma`` and epoch 12 at ``gamma**2`` when counting from 1), and the
warmup multiplies that regular rate by a factor rising linearly from ``warmup_ratio`` at
iteration 0 to 1 at ``warmup_iters``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsanet_geo.train.config import TrainConfig


def lr_at(
    iteration: int,
    iters_per_epoch: int,
    *,
    base_lr: float,
    steps: Sequence[int] = (),
    gamma: float = 0.1,
    warmup_iters: int = 500,
    warmup_ratio: float = 1.0 / 3.0,
) -> float:
    """Learning rate for a 0-based global ``iteration`` (the step about to be taken).

    Args:
        iteration: iterations already done in the whole run (0 for the first step).
        iters_per_epoch: optimiser steps per epoch (> 0).
        base_lr: the rate after warmup and before any decay.
        steps: 0-based epochs at which the rate is multiplied by ``gamma``.
        warmup_iters: length of the linear warmup in iterations (0 disables it).
        warmup_ratio: the warmup's starting fraction of the regular rate.
    """
    if iteration < 0:
        raise ValueError(f"iteration must be >= 0, got {iteration}")
    if iters_per_epoch <= 0:
        raise ValueError(f"iters_per_epoch must be > 0, got {iters_per_epoch}")
    epoch = iteration // iters_per_epoch
    regular = base_lr * gamma ** sum(1 for step in steps if epoch >= step)
    if iteration < warmup_iters:
        k = (1.0 - iteration / warmup_iters) * (1.0 - warmup_ratio)
        return regular * (1.0 - k)
    return regular


MIN_SCENE_ITERS = 300
"""Iterations a scene run makes at least when neither ``--max-iters`` nor ``--chips-per-epoch``
sets its length: a 400 px scene's few chips per epoch would otherwise train 12 steps."""


@dataclass(frozen=True)
class RunLength:
    """How long a run is, in its own epochs: ``iters_per_epoch`` steps each, ``epochs`` of them,
    the rate decayed at 0-based ``lr_steps`` epochs after ``warmup_iters`` warm-up steps."""

    iters_per_epoch: int
    epochs: int
    lr_steps: tuple[int, ...]
    warmup_iters: int
    planned_iters: int = 0
    """Iterations the run is made of (``max_iters`` for a run that follows iterations, else
    ``iters_per_epoch * epochs``): the run is complete when it has done them."""


def run_length(*, items: int, batch_size: int, world_size: int, epochs: int, lr_steps: Sequence[int],
               warmup_iters: int, max_iters: int | None, fit_items: bool) -> tuple[int, RunLength]:
    """``(items per epoch, RunLength)`` of a run.

    A run whose epoch length is its own to choose (``fit_items``: scene chips drawn on the fly,
    no ``--chips-per-epoch``) follows iterations: its epochs hold at least
    ``MIN_SCENE_ITERS / epochs`` steps (:data:`MIN_SCENE_ITERS` in all); ``max_iters`` N runs
    exactly N steps, in as many of those epochs as N fills, with the decay steps moved in
    proportion (8, 11 of 12 -> 1, 2 of 2); its warm-up is at most a tenth of the run. Other runs keep their epochs, and ``max_iters`` only
    stops them early.
    """
    from fsanet_geo.train.config import scale_steps
    from fsanet_geo.train.sampler import iters_per_epoch

    ipe = iters_per_epoch(items, batch_size, world_size)
    if not fit_items:
        return items, RunLength(ipe, epochs, tuple(lr_steps), warmup_iters, ipe * epochs)
    ipe = max(ipe, math.ceil(MIN_SCENE_ITERS / epochs))  # not from max_iters: a resume may move the cap
    run_epochs = math.ceil(max_iters / ipe) if max_iters else epochs
    steps = scale_steps(lr_steps, epochs, run_epochs)
    stop = min(ipe * run_epochs, max_iters or ipe * run_epochs)
    warmup = min(warmup_iters, max(1, stop // 10)) if warmup_iters else 0
    return ipe * batch_size * world_size, RunLength(ipe, run_epochs, steps, warmup, stop)


def config_run_length(config: TrainConfig, items: int, world_size: int) -> tuple[int, RunLength]:
    """:func:`run_length` of a training config whose epoch naturally holds ``items`` items; a scene
    run without ``--chips-per-epoch`` follows iterations."""
    fit = config.dataset == "scenes" and config.scenes.chips_per_epoch is None
    return run_length(items=items, batch_size=config.batch_size, world_size=world_size, epochs=config.epochs,
                      lr_steps=config.lr_steps, warmup_iters=config.warmup_iters, max_iters=config.max_iters,
                      fit_items=fit)
