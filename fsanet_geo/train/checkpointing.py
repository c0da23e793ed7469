"""A run's checkpoints: write ``epoch_N``/``last``/``best``, restore ``last`` on resume,
and refuse a resume whose model the preset now builds differently.

``last.state.pt`` (the whole training state, :mod:`fsanet_geo.train.state`) is written
before ``last.safetensors`` and holds the model weights too, so resuming never depends
on a pair of files being consistent. Every file is written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.model.files.imagery import ImageryProfile
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.state import capture_rng, load_training_state, restore_rng, save_training_state
from fsanet_geo.train.workdir import LAST_MODEL, LAST_STATE

if TYPE_CHECKING:
    from fsanet_geo.model.config import ModelConfig


def link_into_place(source: Path, target: Path) -> bool:
    """Make ``target`` a hard link to ``source``, atomically (a temporary link renamed onto
    it); False where the filesystem has no hard links (then nothing changed)."""
    tmp = target.with_name(f".{target.name}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


CALIBRATED_FIELDS = ("score_thr", "class_score_thr")
"""Model settings a validation sets (the F1-best cuts), carried over by a resume, not compared."""


def _epoch_number(path: Path) -> int:
    """``epoch_12.safetensors`` -> 12; -1 for a name that is not ours."""
    number = path.name[len("epoch_"):-len(".safetensors")]
    return int(number) if number.isdigit() else -1


@dataclass(frozen=True)
class ResumePoint:
    """Where a restored run goes on: the global ``iteration`` reached and the best
    validation AP so far (a fraction; None before any validation)."""

    iteration: int
    best_ap: float | None


class Checkpoints:
    """The checkpoint files of one run in ``config.work_dir`` (rank 0 calls the writers).

    ``scaler`` is the AMP gradient scaler, or None when the run does not use AMP.
    """

    def __init__(
        self,
        config: TrainConfig,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
    ) -> None:
        self.config = config
        self.work = config.work_path
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.imagery: ImageryProfile = ImageryProfile(gsd=config.gsd)
        """What the checkpoints record of the training imagery (GSD, 8-bit levels); the engine
        sets the measured one (:func:`~fsanet_geo.train.imagery.training_imagery`)."""
        self.metadata: dict[str, str] = {}
        """Further metadata of every model file (e.g. ``fine_tuned_from``: the class transfer)."""

    def save_model(self, path: Path, *, epoch: int, iteration: int, extra: dict[str, str] | None = None) -> None:
        """The model's weights with the epoch, iteration, training config and ``extra`` as metadata."""
        from fsanet_geo.model.files.checkpoint import save_checkpoint

        meta = {"epoch": str(epoch), "iteration": str(iteration),
                "train_config": json.dumps(self.config.to_dict()),
                **self.imagery.to_metadata(), **self.metadata, **(extra or {})}
        save_checkpoint(self.model, path, overwrite=True, extra_metadata=meta)  # atomic

    def save_last(self, *, iteration: int, iters_per_epoch: int, world_size: int,
                  best_ap: float | None, same_as: Path | None = None) -> Path:
        """Write ``last.state.pt`` then ``last.safetensors``; return the latter's path.

        ``same_as``: a model file just written at this same iteration (``epoch_N``);
        ``last.safetensors`` becomes a hard link to it where the filesystem allows, not a copy.
        """
        state = {
            "iteration": iteration,
            "iters_per_epoch": iters_per_epoch,
            "world_size": world_size,
            "best_ap": best_ap,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "rng": capture_rng(),
        }
        save_training_state(self.work / LAST_STATE, state)
        last = self.work / LAST_MODEL
        if same_as is None or not link_into_place(same_as, last):
            self.save_model(last, epoch=iteration // iters_per_epoch, iteration=iteration)
        return last

    def prune_epochs(self, keep: int) -> list[Path]:
        """Delete all but the newest ``keep`` ``epoch_N`` files (``keep`` 0: none); the deleted."""
        if keep <= 0:
            return []
        found = sorted(self.work.glob("epoch_*.safetensors"), key=_epoch_number)
        old = [p for p in found if _epoch_number(p) >= 0][:-keep]
        for path in old:
            path.unlink(missing_ok=True)
        return old

    def restore(self, *, iters_per_epoch: int) -> ResumePoint:
        """Load ``last.state.pt`` into the model, optimiser, scaler and the RNGs.

        Raises :class:`ConfigError` when the preset now builds another model or the run
        had another number of iterations per epoch, :class:`CheckpointError` when the
        state does not fit the model.
        """
        path = self.work / LAST_STATE
        saved = self.check_model_settings()
        if saved is not None:
            self.restore_calibration(saved)
        state = load_training_state(path)
        if state["iters_per_epoch"] != iters_per_epoch:
            raise ConfigError(
                f"cannot resume {self.work}: it ran {state['iters_per_epoch']} iterations per epoch, "
                f"now {iters_per_epoch} (training set or number of processes changed)"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the model {self.config.model}: {exc}") from exc
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        return ResumePoint(iteration=int(state["iteration"]), best_ap=state.get("best_ap"))

    def check_model_settings(self) -> ModelConfig | None:
        """Refuse to resume when the model the preset builds now differs from the one the
        run saved in ``last.safetensors`` (a preset default changed between versions, e.g.
        a loss option): the rest of the run would silently train something else. Returns the
        saved ``ModelConfig`` (None without ``last.safetensors``)."""
        from fsanet_geo.model.files.checkpoint import read_checkpoint_config

        last = self.work / LAST_MODEL
        if not last.is_file():
            return None
        saved_config = read_checkpoint_config(last)
        saved = dataclasses.asdict(saved_config)
        now = dataclasses.asdict(self.model.config)  # type: ignore[arg-type]
        changed = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in now
                   if k in saved and saved[k] != now[k] and k not in CALIBRATED_FIELDS]
        if changed:
            raise ConfigError(
                f"cannot resume {self.work}: its model was built with other settings than "
                f"{self.config.model} gives now: {', '.join(changed)}; start a new run with "
                f"--init-weights {last} instead"
            )
        return saved_config

    def restore_calibration(self, saved: ModelConfig) -> None:
        """Give the model the score cuts of the resumed run's ``last`` (config ``saved``), and
        its ``calibration`` record to every model file written from now on."""
        from fsanet_geo.model.detector import set_score_thresholds
        from fsanet_geo.model.files.checkpoint import read_checkpoint_metadata

        set_score_thresholds(self.model, saved.score_thr, saved.class_score_thr)
        calibration = read_checkpoint_metadata(self.work / LAST_MODEL).get("calibration")
        if calibration is not None:
            self.metadata["calibration"] = calibration

    def last_good(self) -> str:
        """A phrase naming the last good checkpoint, for an error message."""
        last = self.work / LAST_MODEL
        if last.is_file():
            return f"the last good checkpoint is {last}"
        return "no checkpoint was written before it"
