"""Learning-rate schedule: linear warmup, then step decay by epoch (the paper's recipe).

Follows MMDetection 2.x's ``lr_config = dict(policy='step', warmup='linear', ...)``:
the step factor depends on the 0-based epoch of the iteration (``steps=(8, 11)`` means
epochs 9..11 run at ``gamma`` and epoch 12 at ``gamma**2`` when counting from 1), and the
warmup multiplies that regular rate by a factor rising linearly from ``warmup_ratio`` at
iteration 0 to 1 at ``warmup_iters``.
"""

from __future__ import annotations

from collections.abc import Sequence


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
