"""What the training engine reports: progress events and the final result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainEvent:
    """One progress report from :func:`fsanet_geo.train.train` (rank 0 only).

    Kinds:
      ``start``: before the first step (``iteration`` is where the run starts: 0, or the
      resumed iteration);
      ``iter``: after each optimiser step, with ``losses`` (each weighted part and
      ``loss``, their sum), ``lr``, ``images_per_s`` and ``eta_s``;
      ``val``: after a validation, with ``metrics`` (AP, AP50, ... as fractions);
      ``checkpoint``: after a checkpoint was written, with ``path``;
      ``end``: the run is over.

    ``epoch`` is 1-based (the epoch being trained); ``iteration`` counts the steps done
    in the whole run; ``epoch_iter`` those done in this epoch, of ``iters_per_epoch``.
    """

    kind: str
    epoch: int
    iteration: int
    total_iters: int
    epoch_iter: int = 0
    iters_per_epoch: int = 0
    epochs: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    images_per_s: float = 0.0
    eta_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished run.

    ``iterations`` is the global step count reached; ``completed`` is true when every
    epoch ran (false when ``max_iters`` stopped the run early). ``best_ap`` is the
    best validation AP (fraction) or None without validation. ``images_per_s`` is the
    training throughput of all processes (batch loading and steps; checkpoints and
    validation excluded); ``seconds`` the wall time of the whole call. ``interrupted``
    names the signal (``SIGINT``, ``SIGTERM``) that stopped the run after writing ``last``,
    None when it ran to its end.
    """

    work_dir: Path
    iterations: int
    epochs_done: int
    completed: bool
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_ap: float | None
    final_losses: dict[str, float]
    images_per_s: float
    metrics_log: Path
    seconds: float
    interrupted: str | None = None
    calibration: dict[str, Any] | None = None
    """The latest validation's F1-best score cuts (``score_thr``, ``precision``, ``recall``,
    ``classes``: per class; see :mod:`fsanet_geo.evaluate.score_calibration`), stored in the
    model files written after it; None without validation."""
