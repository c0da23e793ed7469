"""The training loop behind ``fsanet train``.

Files in the work dir (all written by rank 0, each atomically):
  ``config.json``           the :class:`TrainConfig` of the run;
  ``metrics.jsonl``         one JSON object per logged step (``"type": "train"``) and
                            per validation (``"type": "val"``);
  ``epoch_{N}.safetensors`` the model after epoch N (1-based), every ``save_interval``;
  ``last.safetensors``      the latest model (readable by ``load_model``/``fsanet eval``);
  ``last.state.pt``         the full training state ``resume`` reads (see ``state.py``);
  ``best.safetensors``      the model with the best validation AP.

``last.state.pt`` is written before ``last.safetensors`` and holds the model weights
too, so resuming never depends on a pair of files being consistent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn
from torch.utils.data import DataLoader

from fsanet_geo.errors import CheckpointError, ConfigError, FileOverwriteError, TrainingError
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.distributed import DistContext, init_distributed
from fsanet_geo.train.events import TrainEvent, TrainResult
from fsanet_geo.train.sampler import SeededItems, epoch_batches, iters_per_epoch, keyed_batches
from fsanet_geo.train.schedule import lr_at
from fsanet_geo.train.state import capture_rng, load_training_state, restore_rng, save_training_state

Progress = Callable[[TrainEvent], None]

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LAST_MODEL = "last.safetensors"
LAST_STATE = "last.state.pt"
BEST_MODEL = "best.safetensors"
_OUR_FILES = (CONFIG_FILE, METRICS_FILE, LAST_MODEL, LAST_STATE, BEST_MODEL)
_SPEED_SMOOTHING = 0.1  # weight of the newest step in the moving average of step time


def train(config: TrainConfig, *, progress: Progress | None = None) -> TrainResult:
    """Train a detector as ``config`` says; return a summary.

    Seeds every RNG from ``config.seed``; under ``torchrun`` (``WORLD_SIZE > 1``) runs
    data-parallel with only rank 0 writing files and reporting ``progress``. Raises
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


def prepare_work_dir(config: TrainConfig, *, write: bool) -> TrainConfig | None:
    """Check the work dir; return the saved config when resuming.

    A non-empty work dir is refused unless ``resume`` or ``overwrite``; with
    ``overwrite`` the files of a previous run (and only those) are removed when
    ``write`` is true.
    """
    work = config.work_path
    if config.resume:
        state = work / LAST_STATE
        if not state.is_file():
            raise CheckpointError(f"cannot resume: {state} does not exist")
        saved_path = work / CONFIG_FILE
        if not saved_path.is_file():
            raise CheckpointError(f"cannot resume: {saved_path} does not exist")
        try:
            saved = TrainConfig.from_dict(json.loads(saved_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            raise CheckpointError(f"cannot resume: {saved_path} is not a training config: {exc}") from exc
        changed = config.resume_mismatches(saved)
        if changed:
            details = ", ".join(
                f"{name} {getattr(saved, name)!r} -> {getattr(config, name)!r}" for name in changed
            )
            raise ConfigError(f"cannot resume {work} with different settings: {details}")
        return saved
    if work.exists() and not work.is_dir():
        raise FileOverwriteError(f"work dir {work} exists and is not a folder")
    if work.is_dir() and any(work.iterdir()):
        if not config.overwrite:
            raise FileOverwriteError(
                f"work dir {work} is not empty: use --resume to continue its run "
                "or --overwrite to start a new one there"
            )
        if write:
            for path in [*(work / name for name in _OUR_FILES), *work.glob("epoch_*.safetensors")]:
                path.unlink(missing_ok=True)
    if write:
        work.mkdir(parents=True, exist_ok=True)
    return None


class _Run:
    """One training run: datasets, model, optimiser and the loop over them."""

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

        self.train_set, self.val_set = _build_datasets(config)
        self.model = _build_model(config, list(self.train_set.class_names)).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = _build_optimizer(config, self.params, config.lr_for(ctx.world_size))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        # Only once the data and model are known good: a bad option neither leaves an empty
        # work dir behind nor removes a previous run's files under --overwrite.
        prepare_work_dir(config, write=ctx.is_main)
        ctx.barrier()

        self.ipe = iters_per_epoch(len(self.train_set), config.batch_size, ctx.world_size)
        self.total_iters = self.ipe * config.epochs
        self.stop_at = min(self.total_iters, config.max_iters or self.total_iters)
        self.iteration = 0
        self.best_ap: float | None = None
        if config.resume:
            self._restore()
        self.net: nn.Module = self.model
        if ctx.distributed:
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self._log: TextIO | None = None
        self._lr = 0.0  # the rate of the latest step

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainResult:
        cfg = self.config
        started = time.perf_counter()
        if self.ctx.is_main:
            self._write_config()
            self._open_log(truncate_after=self.iteration if cfg.resume else None)
        self._emit("start", epoch=self.iteration // self.ipe + 1)
        losses: dict[str, float] = {}
        images_done = 0
        busy = 0.0  # seconds spent loading batches and stepping (no checkpoints, no validation)
        step_time: float | None = None
        try:
            while self.iteration < self.stop_at:
                epoch = self.iteration // self.ipe
                skip = self.iteration % self.ipe
                last_tick = time.perf_counter()
                for images, targets in self._loader(epoch, skip, self.stop_at - self.iteration):
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
                if self.iteration % self.ipe == 0:
                    self._end_epoch(epoch + 1)
                else:
                    self._save_last()
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
            completed=self.iteration >= self.total_iters,
            last_checkpoint=self.work / LAST_MODEL,
            best_checkpoint=best if best.is_file() else None,
            best_ap=self.best_ap,
            final_losses=losses,
            images_per_s=images_done / busy if busy > 0 else 0.0,
            metrics_log=self.work / METRICS_FILE,
            seconds=seconds,
        )

    def _loader(self, epoch: int, skip: int, limit: int) -> DataLoader:
        """At most ``limit`` batches of ``epoch`` from its ``skip``-th on (a resumed run
        skips those already done)."""
        from fsanet_geo.data.dataset import collate

        cfg = self.config
        batches = epoch_batches(len(self.train_set), cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                rank=self.ctx.rank, world_size=self.ctx.world_size)
        return DataLoader(
            SeededItems(self.train_set, cfg.seed),
            batch_sampler=keyed_batches(batches[skip : skip + limit], epoch),
            collate_fn=collate,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
        )

    def _step(
        self, images: list[torch.Tensor], targets: list[dict[str, Any]], epoch: int
    ) -> dict[str, float]:
        """One optimiser step; returns the (process-averaged) loss parts and their sum."""
        cfg = self.config
        lr = lr_at(self.iteration, self.ipe, base_lr=cfg.lr_for(self.ctx.world_size),
                   steps=cfg.lr_steps, gamma=cfg.lr_gamma, warmup_iters=cfg.warmup_iters,
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
                f"{bad} = {float(values[names.index(bad)])}; {self._last_good()}"
            )
        total = sum(parts.values())
        self.scaler.scale(total).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            if not self.amp and not bool(torch.isfinite(norm)):
                raise TrainingError(
                    f"non-finite gradient norm at iteration {self.iteration + 1} "
                    f"(epoch {epoch + 1}); {self._last_good()}"
                )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {n: float(v) for n, v in zip(names, values.tolist())}
        out["loss"] = float(sum(out.values()))
        self._lr = lr
        return out

    # ------------------------------------------------------------------ epochs, checkpoints
    def _end_epoch(self, epoch: int) -> None:
        """After epoch ``epoch`` (1-based): epoch checkpoint, ``last``, validation, ``best``."""
        cfg = self.config
        final = epoch == cfg.epochs
        if self.ctx.is_main and (epoch % cfg.save_interval == 0 or final):
            self._save_model(self.work / f"epoch_{epoch}.safetensors", epoch)
        self._save_last()
        if self.val_set is None or not (epoch % cfg.val_interval == 0 or final):
            return
        if self.ctx.is_main:
            metrics = self._validate()
            self._write_log({"type": "val", "epoch": epoch, "iter": self.iteration, **metrics})
            self._emit("val", epoch=epoch, metrics=metrics)
            ap = metrics.get("AP", -1.0)
            if self.best_ap is None or ap > self.best_ap:
                self.best_ap = ap
                self._save_model(self.work / BEST_MODEL, epoch)
                self._write_last()
        self.ctx.barrier()

    def _validate(self) -> dict[str, float]:
        from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
        from fsanet_geo.evaluate.predict import predict_dataset

        detections = predict_dataset(self.model, self.val_set, batch_size=self.config.batch_size,
                                     device=self.device)
        self.model.train()
        result = evaluate_coco(_ground_truth(self.val_set), detections)
        return {k: float(v) for k, v in result.stats.items()}

    def _save_last(self) -> None:
        """Write ``last.state.pt`` then ``last.safetensors`` (rank 0; others wait)."""
        if self.ctx.is_main:
            self._write_last()
        self.ctx.barrier()

    def _write_last(self) -> None:
        """Rank 0's part of :meth:`_save_last` (no synchronisation)."""
        state = {
            "iteration": self.iteration,
            "iters_per_epoch": self.ipe,
            "world_size": self.ctx.world_size,
            "best_ap": self.best_ap,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.amp else {},
            "rng": capture_rng(),
        }
        save_training_state(self.work / LAST_STATE, state)
        self._save_model(self.work / LAST_MODEL, self.iteration // self.ipe)

    def _save_model(self, path: Path, epoch: int) -> None:
        from fsanet_geo.model.checkpoint import save_checkpoint

        meta = {"epoch": str(epoch), "iteration": str(self.iteration),
                "train_config": json.dumps(self.config.to_dict())}
        save_checkpoint(self.model, path, overwrite=True, extra_metadata=meta)  # atomic
        self._emit("checkpoint", epoch=max(epoch, 1), path=path)

    def _restore(self) -> None:
        """Load ``last.state.pt``: weights, optimiser, scaler, iteration and RNG states."""
        path = self.work / LAST_STATE
        self._check_model_settings()
        state = load_training_state(path)
        if state["iters_per_epoch"] != self.ipe:
            raise ConfigError(
                f"cannot resume {self.work}: it ran {state['iters_per_epoch']} iterations per epoch, "
                f"now {self.ipe} (training set or number of processes changed)"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the model {self.config.model}: {exc}") from exc
        if self.amp and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.best_ap = state.get("best_ap")
        restore_rng(state["rng"])

    def _check_model_settings(self) -> None:
        """Refuse to resume when the model the preset builds now differs from the one the
        run saved in ``last.safetensors`` (a preset default changed between versions, e.g.
        a loss option): the rest of the run would silently train something else."""
        from fsanet_geo.model.checkpoint import read_checkpoint_config

        last = self.work / LAST_MODEL
        if not last.is_file():
            return
        saved = dataclasses.asdict(read_checkpoint_config(last))
        now = dataclasses.asdict(self.model.config)  # type: ignore[attr-defined]
        changed = [f"{k} {saved[k]!r} -> {now[k]!r}" for k in now if k in saved and saved[k] != now[k]]
        if changed:
            raise ConfigError(
                f"cannot resume {self.work}: its model was built with other settings than "
                f"{self.config.model} gives now: {', '.join(changed)}; start a new run with "
                f"--init-weights {last} instead"
            )

    def _last_good(self) -> str:
        last = self.work / LAST_MODEL
        if last.is_file():
            return f"the last good checkpoint is {last}"
        return "no checkpoint was written before it"

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
                                     epochs=self.config.epochs, **fields))

    def _write_config(self) -> None:
        with atomic_path(self.work / CONFIG_FILE, overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.config.to_dict(), indent=2), encoding="utf-8")

    def _open_log(self, *, truncate_after: int | None) -> None:
        """Open the metrics log; on resume drop records past the resumed iteration."""
        path = self.work / METRICS_FILE
        if truncate_after is not None and path.is_file():
            kept = [line for line in _read_lines(path) if json.loads(line).get("iter", 0) <= truncate_after]
            with atomic_path(path, overwrite=True) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self._log = path.open("a", encoding="utf-8")

    def _write_log(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()


def _read_lines(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: drop it
            yield line


def _to_device(target: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in target.items()}


def _build_datasets(config: TrainConfig) -> tuple[Any, Any | None]:
    from fsanet_geo.data.dataset import build_dataset

    size = config.input_size or _preset_input_size(config.model)
    common = {"data_root": config.data_root, "input_size": size}
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


def _preset_input_size(name: str) -> int:
    from fsanet_geo.model.presets import preset_config

    return int(preset_config(name).input_size)


def _build_model(config: TrainConfig, class_names: list[str]) -> nn.Module:
    from fsanet_geo.model.presets import build_model

    overrides = dict(config.model_overrides)
    if config.input_size is not None:
        overrides["input_size"] = config.input_size
    pretrained = config.pretrained_backbone
    if isinstance(pretrained, str) and pretrained.lower() == "imagenet":
        pretrained = True
    model = build_model(config.model, num_classes=len(class_names), class_names=class_names,
                        pretrained_backbone=pretrained, **overrides)
    if config.init_weights:
        _load_init_weights(model, config.init_weights)
    return model


def _load_init_weights(model: nn.Module, path: str) -> None:
    """Start from a checkpoint's weights (fine-tuning); architecture and classes must match."""
    from fsanet_geo.model.checkpoint import load_model

    source = load_model(path, "cpu")
    ours, theirs = model.config, source.config  # type: ignore[attr-defined]
    if (ours.preset, ours.num_classes) != (theirs.preset, theirs.num_classes):
        raise ConfigError(
            f"--init-weights {path} is a {theirs.preset} with {theirs.num_classes} classes, "
            f"but this run trains a {ours.preset} with {ours.num_classes} classes"
        )
    model.load_state_dict(source.state_dict())


def _build_optimizer(config: TrainConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW; weight decay on every trainable parameter."""
    if not params:
        raise ConfigError(f"model {config.model} has no trainable parameters")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)


def _ground_truth(dataset: Any) -> Any:
    """The COCO ground-truth dict of a dataset (its ``coco`` attribute)."""
    coco = getattr(dataset, "coco", None)
    if coco is None:
        raise TrainingError("the validation dataset exposes no COCO ground truth")
    return getattr(coco, "dataset", coco)
