"""The training engine on a tiny synthetic set (CPU, light preset, a few iterations)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from fsanet_geo.errors import CheckpointError, ConfigError, DatasetError, FileOverwriteError, TrainingError
from fsanet_geo.model.files.checkpoint import load_model
from fsanet_geo.train import engine
from fsanet_geo.train.engine import train
from fsanet_geo.train.schedule import lr_at
from fsanet_geo.train.state import load_training_state


def _records(work: Path, kind: str = "train") -> list[dict[str, Any]]:
    lines = (work / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


def _spy_saves(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Record the iteration of every ``last`` written, per work dir."""
    saved: dict[str, list[int]] = {}
    save_last = engine.Checkpoints.save_last

    def spy(self: Any, *, iteration: int, **kwargs: Any) -> Any:
        saved.setdefault(str(self.config.work_dir), []).append(iteration)
        return save_last(self, iteration=iteration, **kwargs)

    monkeypatch.setattr(engine.Checkpoints, "save_last", spy)
    return saved


def _spy_batches(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[int, list[int]]]]:
    """Record (iteration, image ids) of every step, per work dir."""
    seen: dict[str, list[tuple[int, list[int]]]] = {}
    step = engine._Run._step

    def spy(self: Any, images: list[torch.Tensor], targets: list[dict[str, Any]], epoch: int) -> Any:
        ids = [int(t["image_id"]) for t in targets]
        seen.setdefault(self.config.work_dir, []).append((self.iteration, ids))
        return step(self, images, targets, epoch)

    monkeypatch.setattr(engine._Run, "_step", spy)
    return seen


def test_two_iterations_write_checkpoints_log_and_config(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    work = tmp_path / "run"
    events: list[Any] = []
    result = train(tiny_config(tiny_aitod, work, max_iters=2), progress=events.append)

    assert result.iterations == 2 and not result.completed
    assert result.last_checkpoint == work / "last.safetensors"
    model = load_model(work / "last.safetensors", "cpu")
    assert model.config.preset == "fsanet_r18_medium" and model.config.input_size == 128
    assert load_training_state(work / "last.state.pt")["iteration"] == 2
    # the logged learning rates are the schedule's: warmup over 2 iterations from 1/3
    records = _records(work)
    assert [r["iter"] for r in records] == [1, 2]
    assert [r["lr"] for r in records] == pytest.approx([0.01 / 3, 0.01 * (1 - 0.5 * 2 / 3)])
    for r in records:
        parts = {k: r[k] for k in ("cls", "box_init", "box_refine", "centerness")}
        assert r["loss"] == pytest.approx(sum(parts.values()))
        assert r["images_per_s"] > 0
    saved = json.loads((work / "config.json").read_text())
    assert saved["model"] == "fsanet_r18_medium" and saved["max_iters"] == 2
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("iter") == 2
    iters = [e for e in events if e.kind == "iter"]
    assert [e.iteration for e in iters] == [1, 2] and iters[0].lr == pytest.approx(0.01 / 3)
    assert set(iters[0].losses) == {"cls", "box_init", "box_refine", "centerness", "loss"}


def test_epoch_end_validates_and_keeps_best(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    work = tmp_path / "run"
    result = train(tiny_config(tiny_aitod, work, epochs=1, val_interval=1))
    assert result.completed and result.epochs_done == 1
    assert (work / "epoch_1.safetensors").is_file()
    val = _records(work, "val")
    assert len(val) == 1 and val[0]["epoch"] == 1 and {"AP", "AP50", "APvt", "APt"} <= set(val[0])
    assert result.best_checkpoint == work / "best.safetensors"
    assert result.best_ap == val[0]["AP"]
    assert load_training_state(work / "last.state.pt")["best_ap"] == val[0]["AP"]


def test_a_run_cut_by_max_iters_validates_where_it_stops(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    # 5 trainval images, batch 2: 2 iterations per epoch; --max-iters 1 stops inside epoch 1
    work = tmp_path / "run"
    result = train(tiny_config(tiny_aitod, work, max_iters=1, epochs=12, val_interval=5))
    assert result.iterations == 1 and not result.completed
    val = _records(work, "val")
    assert len(val) == 1 and val[0]["epoch"] == 1 and val[0]["iter"] == 1
    assert result.best_checkpoint == work / "best.safetensors" and result.best_ap == val[0]["AP"]
    assert not (work / "epoch_1.safetensors").exists()  # epoch 1 is not done: no epoch checkpoint


def test_resumed_run_matches_an_uninterrupted_one(
    tiny_aitod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Any
) -> None:
    # 4 training images, batch 1: 4 iterations per epoch; stopping after 3 resumes mid-epoch,
    # and the resumed part crosses into epoch 2 (new shuffle, lr step at epoch 1).
    # A third run is stopped by SIGTERM during iteration 3 (as a scheduler or Ctrl-C would),
    # after a --checkpoint-every 2 save at iteration 2; it finishes iteration 3, saves, returns.
    seen = _spy_batches(monkeypatch)
    saved = _spy_saves(monkeypatch)
    whole = tiny_config(tiny_aitod, tmp_path / "whole", batch_size=1, max_iters=6)
    train(whole)
    part = dataclasses.replace(whole, work_dir=str(tmp_path / "part"), max_iters=3)
    train(part)
    resumed = train(dataclasses.replace(part, max_iters=6, resume=True))
    signalled = dataclasses.replace(whole, work_dir=str(tmp_path / "signal"), checkpoint_every=2)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def stop_at_three(event: Any) -> None:
        if event.kind == "iter" and event.iteration == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    stopped = train(signalled, progress=stop_at_three)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers  # restored
    assert stopped.interrupted == "SIGTERM" and stopped.iterations == 3 and not stopped.completed
    assert saved[signalled.work_dir] == [2, 3]
    assert load_training_state(tmp_path / "signal" / "last.state.pt")["iteration"] == 3
    after_signal = train(dataclasses.replace(signalled, resume=True))

    assert resumed.iterations == after_signal.iterations == 6 and after_signal.interrupted is None
    assert seen[whole.work_dir] == seen[part.work_dir] == seen[signalled.work_dir]
    assert [i for i, _ in seen[part.work_dir]] == [0, 1, 2, 3, 4, 5]
    a = load_file(tmp_path / "whole" / "last.safetensors")
    for other in ("part", "signal"):
        b = load_file(tmp_path / other / "last.safetensors")
        assert a.keys() == b.keys()
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5)
    # same learning rates, and the log of the resumed run has each iteration once
    lrs_whole = [r["lr"] for r in _records(tmp_path / "whole")]
    lrs_part = [r["lr"] for r in _records(tmp_path / "part")]
    assert lrs_part == lrs_whole
    assert lrs_whole[4] == pytest.approx(lr_at(4, 4, base_lr=0.01, steps=(1,), warmup_iters=2))
    assert lrs_whole[4] == pytest.approx(0.001)


def test_resume_refuses_a_model_the_preset_now_builds_differently(
    tiny_aitod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Any
) -> None:
    config = tiny_config(tiny_aitod, tmp_path / "run", max_iters=1)
    train(config)
    # a later version changes a preset default (here: a loss option) under the same name
    from fsanet_geo.model import presets

    changed = {**presets.PRESETS[config.model], "centerness_per_object": True}
    monkeypatch.setitem(presets.PRESETS, config.model, changed)
    with pytest.raises(ConfigError, match=r"centerness_per_object False -> True.*--init-weights"):
        train(dataclasses.replace(config, max_iters=2, resume=True))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_aitod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Any
) -> None:
    work = tmp_path / "run"
    config = tiny_config(tiny_aitod, work, max_iters=2)
    train(config)
    digest = hashlib.sha256((work / "last.safetensors").read_bytes()).hexdigest()

    from fsanet_geo.model.detector import FSANet

    forward = FSANet.forward

    def poisoned(self: Any, images: Any, targets: Any = None) -> Any:
        out = forward(self, images, targets)
        if targets is not None:
            out["box_refine"] = out["box_refine"] * float("nan")
        return out

    monkeypatch.setattr(FSANet, "forward", poisoned)
    with pytest.raises(TrainingError, match=r"iteration 3 .*box_refine = nan.*last good checkpoint"):
        train(dataclasses.replace(config, max_iters=4, resume=True))
    assert hashlib.sha256((work / "last.safetensors").read_bytes()).hexdigest() == digest
    assert load_training_state(work / "last.state.pt")["iteration"] == 2
    load_model(work / "last.safetensors", "cpu")


def test_huge_learning_rate_is_caught(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    config = tiny_config(tiny_aitod, tmp_path / "run", lr=1e10, warmup_iters=0, grad_clip=None, max_iters=6)
    with pytest.raises(TrainingError, match="non-finite"):
        train(config)


def test_work_dir_rules(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    work = tmp_path / "run"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    with pytest.raises(FileOverwriteError, match="not empty"):
        train(tiny_config(tiny_aitod, work, max_iters=1))
    with pytest.raises(CheckpointError, match="cannot resume"):
        train(tiny_config(tiny_aitod, work, max_iters=1, resume=True))
    (work / "epoch_9.safetensors").write_text("old run")
    train(tiny_config(tiny_aitod, work, max_iters=1, overwrite=True))
    assert not (work / "epoch_9.safetensors").exists()  # a previous run's file is replaced
    assert (work / "notes.txt").read_text() == "mine"  # a foreign file is kept
    with pytest.raises(ConfigError, match="batch_size 2 -> 1"):
        train(tiny_config(tiny_aitod, work, max_iters=2, batch_size=1, resume=True))


def test_a_bad_option_leaves_no_work_dir_and_keeps_a_previous_run(
    tiny_aitod: Path, tmp_path: Path, tiny_config: Any
) -> None:
    # regression: the work dir used to be made (and, with overwrite, emptied) before the data was read
    fresh = tmp_path / "fresh"
    with pytest.raises(DatasetError, match="unknown AI-TOD split"):
        train(tiny_config(tiny_aitod, fresh, max_iters=1, train_split="bogus"))
    assert not fresh.exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "last.safetensors").write_text("previous run")
    (old / "epoch_1.safetensors").write_text("previous run")
    with pytest.raises(DatasetError, match="unknown AI-TOD split"):
        train(tiny_config(tiny_aitod, old, max_iters=1, train_split="bogus", overwrite=True))
    assert (old / "last.safetensors").read_text() == "previous run"
    assert (old / "epoch_1.safetensors").read_text() == "previous run"


@pytest.mark.slow
def test_losses_fall_on_a_tiny_fixed_set(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    # batch 4 = the 4 training images, no flips: the same batch at every step
    config = tiny_config(tiny_aitod, tmp_path / "run", epochs=16, batch_size=4, lr=0.005,
                         warmup_iters=0, flip_h=0.0, lr_steps=())
    result = train(config)
    records = _records(tmp_path / "run")
    assert result.iterations == 16 and len(records) == 16

    def mean(key: str, part: slice) -> float:
        values = [r[key] for r in records[part]]
        return sum(values) / len(values)

    assert mean("loss", slice(-4, None)) < 0.7 * mean("loss", slice(0, 4))
    assert mean("box_refine", slice(-4, None)) < 0.7 * mean("box_refine", slice(0, 4))


def test_a_kill_while_saving_leaves_the_previous_last_intact(
    tiny_aitod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Any
) -> None:
    work = tmp_path / "run"
    config = tiny_config(tiny_aitod, work, max_iters=2)
    train(config)
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.name.startswith("last.")}

    def killed(obj: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).write_bytes(b"half a file")  # the write starts, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        train(dataclasses.replace(config, max_iters=3, resume=True))
    after = {p.name: p.read_bytes() for p in work.iterdir() if p.name.startswith("last.")}
    assert after == before
    assert not [p for p in work.iterdir() if ".tmp" in p.name]
    assert load_training_state(work / "last.state.pt")["iteration"] == 2
