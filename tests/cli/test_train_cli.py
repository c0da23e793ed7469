"""`fsanet train`: a two-iteration CPU run that `fsanet eval` reads, resume, refusals, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    return generate_synthetic_aitod(tmp_path_factory.mktemp("cli_train") / "aitod", 6, seed=1, size=128)


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def train_args(data_root: Path, work: Path, *extra: Any) -> list[Any]:
    return ["train", "--dataset", "aitod", "--data-root", data_root, "--model", "fsanet_r18_medium",
            "--batch-size", "2", "--input-size", "128", "--device", "cpu", "--workers", "0",
            "--val-interval", "0", "--work-dir", work, *extra]


def test_train_two_iterations_then_eval_resume_and_refuse(data_root: Path, tmp_path: Path) -> None:
    work = tmp_path / "run"
    res = invoke(*train_args(data_root, work, "--max-iters", "2"))
    assert res.exit_code == 0, res.output
    assert "training summary" in res.stderr and "stopped early" in res.stderr
    assert res.stdout == ""
    assert (work / "last.safetensors").is_file() and (work / "last.state.pt").is_file()

    out = tmp_path / "metrics.json"
    ev = invoke("eval", "--weights", work / "last.safetensors", "--dataset", "aitod", "--data-root",
                data_root, "--split", "test", "--device", "cpu", "--json-file", out)
    assert ev.exit_code == 0, ev.output
    assert set(json.loads(out.read_text())["stats"]) >= {"AP", "AP50", "APvt", "APt"}

    # the same command again is refused (one line, exit 2) ...
    again = invoke(*train_args(data_root, work, "--max-iters", "2"))
    assert again.exit_code == 2
    assert "not empty" in again.stderr and again.stderr.strip().count("\n") == 0
    # ... while --resume continues from iteration 2 with the saved settings
    more = invoke("train", "--work-dir", work, "--resume", "--max-iters", "3")
    assert more.exit_code == 0, more.output
    assert "resuming at iteration 2" in more.stderr
    iters = [json.loads(line)["iter"] for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert iters == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--lr", "0"], "lr must be > 0"),
        (["--resume"], "cannot resume"),
        (["--pretrained-backbone", "missing.pt"], "neither 'imagenet' nor an existing file"),
        (["--model", "fsanet_r18_lite"], "fsanet_r18_lite keeps its backbone's BatchNorm frozen and cannot "
         "train from random init: give --pretrained-backbone imagenet (or a weights file), --init-weights, "
         "or use a from-scratch preset (fsanet_r18_tiny, fsanet_r18_medium)"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    data_root: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    res = invoke(*train_args(data_root, tmp_path / "empty", *args))
    assert res.exit_code == 2, res.output
    assert message in res.stderr
    assert res.stderr.strip().count("\n") == 0


def test_resume_needs_a_work_dir_and_coco_needs_labels(tmp_path: Path) -> None:
    res = invoke("train", "--resume")
    assert res.exit_code == 2 and "--resume needs --work-dir" in res.stderr
    res = invoke("train", "--dataset", "coco", "--images", tmp_path, "--work-dir", tmp_path / "w")
    assert res.exit_code == 2 and "COCO dataset needs" in res.stderr


def test_ctrl_c_saves_last_and_names_the_resume_command(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import shlex
    import signal

    from fsanet_geo.train import engine

    report = engine._Run._report_step

    def interrupt_at_two(self: Any, *args: Any, **kwargs: Any) -> None:
        report(self, *args, **kwargs)
        if self.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C during iteration 2

    work = tmp_path / "run"
    with monkeypatch.context() as mp:
        mp.setattr(engine._Run, "_report_step", interrupt_at_two)
        res = invoke(*train_args(data_root, work, "--max-iters", "3", "--report-every", "1"))
    assert res.exit_code == 130, res.output
    assert "iteration 1/3 (epoch 1/" in res.stderr  # --report-every 1: a line per iteration
    lines = [line for line in res.stderr.splitlines() if "SIGINT" in line]
    command = f"fsanet train --resume --work-dir {shlex.quote(str(work))}"
    assert lines == [f"interrupted (SIGINT): stopped after iteration 2 and saved {work / 'last.safetensors'}; "
                     f"resume with: {command}"]
    assert "training summary" not in res.stderr
    more = invoke(*shlex.split(command)[1:], "--max-iters", "3")
    assert more.exit_code == 0, more.output
    assert "resuming at iteration 2" in more.stderr
