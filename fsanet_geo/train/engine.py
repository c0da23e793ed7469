"""The training loop behind ``fsanet train``: :func:`train`.

The work dir's files are described in :mod:`fsanet_geo.train.workdir`; what a run is
built from in :mod:`fsanet_geo.train.builders`; its checkpoints in
:mod:`fsanet_geo.train.checkpointing`. Validation scores the model with
:func:`fsanet_geo.evaluate.predict.evaluate_model`, as ``fsanet eval`` does.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fsanet_geo.distributed import DistContext, init_distributed
from fsanet_geo.errors import Notice, TrainingError
from fsanet_geo.train.builders import build_datasets, build_detector, build_optimizer, epoch_loader
from fsanet_geo.train.imagery import training_imagery
from fsanet_geo.train.checkpointing import Checkpoints
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.events import TrainEvent, TrainResult
from fsanet_geo.train.interrupt import StopSignals
from fsanet_geo.train.validation import apply_calibration, validation_metrics
from fsanet_geo.train.schedule import config_run_length, lr_at
from fsanet_geo.train.workdir import (
    BEST_MODEL,
    LAST_MODEL,
    METRICS_FILE,
    MetricsLog,
    epoch_model_name,
    prepare_work_dir,
    write_config,
)

Progress = Callable[[TrainEvent], None]

_SPEED_SMOOTHING = 0.1  # weight of the newest step in the moving average of step time


def train(config: TrainConfig, *, progress: Progress | None = None) -> TrainResult:
    """Train a detector as ``config`` says; return a summary.

    Seeds every RNG from ``config.seed``; under ``torchrun`` (``WORLD_SIZE > 1``) runs
    data-parallel with only rank 0 writing files and reporting ``progress``. SIGINT and
    SIGTERM (:mod:`fsanet_geo.train.interrupt`) finish the current iteration, write
    ``last`` and return a result whose ``interrupted`` names the signal; a run resumed
    from it (``resume``) continues mid-epoch exactly as if never stopped. Raises
    :class:`FileOverwriteError` for a non-empty work dir without ``resume``/``overwrite``,
    :class:`CheckpointError` when there is nothing to resume, :class:`ConfigError` when
    a resumed run's schedule settings differ, and :class:`TrainingError` on a
    non-finite loss or gradient (the last good checkpoint is kept).
    """
    ctx = init_distributed(config.device)
    try:
        return _Run(config, ctx, progress).run()
    finally:
        ctx.close()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Run:
    """One training run: the loop over its data, steps, epoch ends and reports."""

    def __init__(self, config: TrainConfig, ctx: DistContext, progress: Progress | None) -> None:
        self.config = config
        self.ctx = ctx
        self.progress = progress if ctx.is_main else None
        self.work = config.work_path
        self.device = ctx.device
        self.amp = bool(config.amp and self.device.type == "cuda")

        prepare_work_dir(config, write=False)  # refuse early, but touch nothing yet
        seed_everything(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False

        self.train_set, self.val_set = build_datasets(config)
        self.model = build_detector(config, list(self.train_set.class_names)).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(config, self.params, config.lr_for(ctx.world_size))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.checkpoints = Checkpoints(config, self.model, self.optimizer,
                                       self.scaler if self.amp else None)
        if ctx.is_main:  # only rank 0 writes checkpoints
            self.checkpoints.imagery = training_imagery(self.train_set, config.gsd)
        self.transfer = getattr(self.model, "class_transfer", None)  # fine-tuning: classes kept and new
        if self.transfer is not None:
            self.checkpoints.metadata["fine_tuned_from"] = json.dumps(self.transfer.to_dict())
        # Only once the data and model are known good: a bad option neither leaves an empty
        # work dir behind nor removes a previous run's files under --overwrite.
        prepare_work_dir(config, write=ctx.is_main)
        ctx.barrier()

        _, self.length = config_run_length(config, len(self.train_set), ctx.world_size)
        self.ipe = self.length.iters_per_epoch
        self.total_iters = self.ipe * self.length.epochs
        self.stop_at = min(self.total_iters, config.max_iters or self.total_iters)
        self.iteration = 0
        self.best_ap: float | None = None
        self.calibration: dict[str, Any] | None = None  # the latest validation's cuts
        if config.resume:
            resumed = self.checkpoints.restore(iters_per_epoch=self.ipe)
            self.iteration, self.best_ap = resumed.iteration, resumed.best_ap
        self.net: nn.Module = self.model
        if ctx.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self._log: MetricsLog | None = None
        self._lr = 0.0  # the rate of the latest step
        self.signals = StopSignals()

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        cfg = self.config
        started = time.perf_counter()
        if self.ctx.is_main:
            write_config(cfg)
            self._log = MetricsLog(self.work, truncate_after=self.iteration if cfg.resume else None)
        if cfg.resume and self.iteration >= self.stop_at:
            warnings.warn(f"nothing to resume: {self.work} already did {self.iteration} of its {self.stop_at} "
                          "iterations; give a larger --max-iters (or --epochs) to train further", Notice, stacklevel=2)
        self._emit("start", epoch=self.iteration // self.ipe + 1)
        if self.transfer is not None and self.ctx.is_main and not cfg.resume:
            self._write_log({"type": "init_weights", "iter": 0, **self.transfer.to_dict()})
            warnings.warn(self.transfer.describe(), Notice, stacklevel=2)
        losses: dict[str, float] = {}
        images_done = 0
        busy = 0.0  # seconds spent loading batches and stepping (no checkpoints, no validation)
        step_time: float | None = None
        stopped = False
        try:
            with self.signals:
                while self.iteration < self.stop_at and not stopped:
                    epoch = self.iteration // self.ipe
                    skip = self.iteration % self.ipe
                    last_tick = time.perf_counter()
                    loader = epoch_loader(self.train_set, cfg, epoch=epoch, skip=skip,
                                          limit=self.stop_at - self.iteration, rank=self.ctx.rank,
                                          world_size=self.ctx.world_size,
                                          pin_memory=self.device.type == "cuda")
                    for images, targets in loader:
                        losses = self._step(images, targets, epoch)
                        self.iteration += 1
                        now = time.perf_counter()
                        dt, last_tick = now - last_tick, now
                        busy += dt
                        step_time = dt if step_time is None else (
                            (1 - _SPEED_SMOOTHING) * step_time + _SPEED_SMOOTHING * dt)
                        batch_images = len(images) * self.ctx.world_size
                        images_done += batch_images
                        self._report_step(epoch, losses, batch_images / step_time,
                                          (self.stop_at - self.iteration) * step_time)
                        stopped = self._stop_requested()
                        if stopped:
                            break
                        if self._checkpoint_due():
                            self._save_last()
                    if self.iteration % self.ipe == 0:
                        self._end_epoch(epoch + 1)
                    else:
                        if self.iteration >= self.stop_at and not stopped:
                            # --max-iters stopped inside the epoch: validate there (no epoch checkpoint)
                            self._validate_and_keep_best(epoch + 1)
                        self._save_last()
                    stopped = stopped or self._stop_requested()  # a signal during the epoch end
        finally:
            if self._log is not None:
                self._log.close()
        seconds = time.perf_counter() - started
        self._emit("end", epoch=max(1, math.ceil(self.iteration / self.ipe)), losses=losses)
        best = self.work / BEST_MODEL
        return TrainResult(
            work_dir=self.work,
            iterations=self.iteration,
            epochs_done=self.iteration // self.ipe,
            completed=self.iteration >= self.length.planned_iters,
            last_checkpoint=self.work / LAST_MODEL,
            best_checkpoint=best if best.is_file() else None,
            best_ap=self.best_ap,
            final_losses=losses,
            images_per_s=images_done / busy if busy > 0 else 0.0,
            metrics_log=self.work / METRICS_FILE,
            seconds=seconds,
            interrupted=self.signals.signal_name if stopped else None,
            calibration=self.calibration,
        )

    def _stop_requested(self) -> bool:
        """Whether a stop signal arrived (on any process: they all stop at the same step)."""
        flag = torch.tensor([1.0 if self.signals.requested else 0.0], device=self.device)
        return bool(self.ctx.mean(flag).item() > 0)

    def _checkpoint_due(self) -> bool:
        """``--checkpoint-every``: a mid-epoch ``last`` is due after this step (an epoch end
        or the run's end writes one anyway)."""
        every = self.config.checkpoint_every
        return (every is not None and self.iteration % every == 0 and self.iteration % self.ipe != 0
                and self.iteration < self.stop_at)

    def _step(
        self, images: list[torch.Tensor], targets: list[dict[str, Any]], epoch: int
    ) -> dict[str, float]:
        """One optimiser step on ``images`` (``Tensor[C, H, W]`` each); returns the
        (process-averaged) loss parts and their sum ``loss``."""
        cfg = self.config
        lr = lr_at(self.iteration, self.ipe, base_lr=cfg.lr_for(self.ctx.world_size),
                   steps=self.length.lr_steps, gamma=cfg.lr_gamma, warmup_iters=self.length.warmup_iters,
                   warmup_ratio=cfg.warmup_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.net.train()
        images = [im.to(self.device, non_blocking=True) for im in images]
        targets = [_to_device(t, self.device) for t in targets]
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.amp
                    else contextlib.nullcontext())
        with autocast:
            parts: dict[str, torch.Tensor] = self.net(images, targets)
        names = list(parts)
        values = self.ctx.mean(torch.stack([parts[n].detach().float() for n in names]))
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = names[int((~finite).nonzero()[0])]
            raise TrainingError(
                f"non-finite loss at iteration {self.iteration + 1} (epoch {epoch + 1}): "
                f"{bad} = {float(values[names.index(bad)])}; {self.checkpoints.last_good()}"
            )
        total = sum(parts.values())
        self.scaler.scale(total).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            if not self.amp and not bool(torch.isfinite(norm)):
                raise TrainingError(
                    f"non-finite gradient norm at iteration {self.iteration + 1} "
                    f"(epoch {epoch + 1}); {self.checkpoints.last_good()}"
                )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {n: float(v) for n, v in zip(names, values.tolist())}
        out["loss"] = float(sum(out.values()))
        self._lr = lr
        return out

    # ------------------------------------------------------------------ epoch ends
    def _end_epoch(self, epoch: int) -> None:
        """After epoch ``epoch`` (1-based): validation (which calibrates the score cuts) and
        ``best``, then the epoch checkpoint and ``last``, so that both carry the new cuts."""
        cfg = self.config
        final = epoch == self.length.epochs or self.iteration >= self.stop_at  # --max-iters: validate there too
        if self.val_set is not None and (final or epoch % cfg.val_interval == 0):
            self._validate_and_keep_best(epoch)
        saved = None
        if self.ctx.is_main and (epoch % cfg.save_interval == 0 or final):
            saved = self.work / epoch_model_name(epoch)
            self._save_model(saved, epoch)
            self.checkpoints.prune_epochs(cfg.keep_epochs)
        self._save_last(same_as=saved)

    def _validate_and_keep_best(self, epoch: int) -> None:
        """Validate (rank 0; others wait), log the metrics, calibrate the model's score cuts
        (the F1-best at IoU 0.5, recorded as ``calibration`` metadata in every later model
        file) and save ``best`` when AP rose."""
        cfg = self.config
        if self.val_set is None:
            return
        if self.ctx.is_main:
            metrics = self._validate()
            self._write_log({"type": "val", "epoch": epoch, "iter": self.iteration, **metrics})
            self._emit("val", epoch=epoch, metrics=metrics)
            record = apply_calibration(self.model, metrics)
            if record is not None:
                self.calibration = {**record, "epoch": epoch, "iteration": self.iteration, "split": _val_name(cfg)}
                self.checkpoints.metadata["calibration"] = json.dumps(self.calibration)
            ap = metrics.get("AP", -1.0)
            if self.best_ap is None or ap > self.best_ap:
                self.best_ap = ap
                self._save_model(self.work / BEST_MODEL, epoch, {
                    "best_metric": "AP", "best_value": f"{ap:.6f}", "best_epoch": str(epoch),
                    "best_split": _val_name(cfg)})
        self.ctx.barrier()

    def _validate(self) -> dict[str, Any]:
        """AI-TOD metrics (fractions) of the model on the validation set, with precision and
        recall per class (:func:`~fsanet_geo.train.validation.validation_metrics`)."""
        metrics = validation_metrics(self.model, self.val_set, batch_size=self.config.batch_size,
                                     device=self.device)
        self.model.train()
        return metrics

    def _save_last(self, same_as: Path | None = None) -> None:
        """Write ``last.state.pt`` then ``last.safetensors`` (rank 0; others wait); ``same_as``
        a model file of this iteration that ``last.safetensors`` may hard-link."""
        if self.ctx.is_main:
            self._write_last(same_as)
        self.ctx.barrier()

    def _write_last(self, same_as: Path | None = None) -> None:
        """Rank 0's part of :meth:`_save_last` (no synchronisation)."""
        path = self.checkpoints.save_last(iteration=self.iteration, iters_per_epoch=self.ipe,
                                          world_size=self.ctx.world_size, best_ap=self.best_ap,
                                          same_as=same_as)
        self._emit("checkpoint", epoch=max(self.iteration // self.ipe, 1), path=path)

    def _save_model(self, path: Path, epoch: int, extra: dict[str, str] | None = None) -> None:
        self.checkpoints.save_model(path, epoch=epoch, iteration=self.iteration, extra=extra)
        self._emit("checkpoint", epoch=max(epoch, 1), path=path)

    # ------------------------------------------------------------------ logs and events
    def _report_step(self, epoch: int, losses: dict[str, float], speed: float, eta: float) -> None:
        epoch_iter = self.iteration - epoch * self.ipe
        if self.ctx.is_main and (self.iteration % self.config.log_interval == 0
                                 or epoch_iter == self.ipe or self.iteration == self.stop_at):
            self._write_log({"type": "train", "epoch": epoch + 1, "iter": self.iteration,
                             "lr": self._lr, **losses, "images_per_s": speed, "eta_s": eta,
                             "time": time.time()})
        self._emit("iter", epoch=epoch + 1, epoch_iter=epoch_iter, losses=losses, lr=self._lr,
                   images_per_s=speed, eta_s=eta)

    def _emit(self, kind: str, *, epoch: int, **fields: Any) -> None:
        if self.progress is not None:
            self.progress(TrainEvent(kind=kind, epoch=epoch, iteration=self.iteration,
                                     total_iters=self.stop_at, iters_per_epoch=self.ipe,
                                     epochs=self.length.epochs, **fields))

    def _write_log(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(record)


def _to_device(target: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in target.items()}


def _val_name(config: TrainConfig) -> str:
    """What ``best`` was picked on, for its metadata."""
    if config.dataset == "scenes":
        return "validation blocks of the labelled scenes"
    return str(config.val_ann or config.val_split)
