"""`--progress json` of `fsanet detect` and `fsanet train`: one JSON object per line on stderr
(docs/cli.md, "Machine-readable progress"), read by the QGIS plugin.

Detect runs the painted-objects predictor (no checkpoint); train's events are rendered from
hand-made :class:`TrainEvent` s and a run result (a real run is in tests/qgis/)."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from scene_helpers import PaintedPredictor, SignallingPredictor, write_painted_scene  # noqa: E402

from fsanet_cli._json_progress import JsonTrainProgress, train_end_event  # noqa: E402
from fsanet_cli.main import app  # noqa: E402
from fsanet_geo.geo.detect import detect_job  # noqa: E402
from fsanet_geo.geo.outputs.journal import journal_dir  # noqa: E402
from fsanet_geo.train.events import TrainEvent  # noqa: E402

runner = CliRunner()
OPTS = ("--tile-size", "64", "--overlap", "16", "--batch-size", "2", "--device", "cpu", "--progress", "json")


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_painted_scene(tmp_path / "s.tif", height=200, width=260, n_objects=30, seed=4).path


def test_detect_reports_each_batch_then_done(scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect_job, "load_detector", lambda *a, **k: PaintedPredictor())
    out = tmp_path / "out.gpkg"
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 0, result.output
    got = events(result.output)
    assert got[0] == {"event": "output", "command": "detect", "output": str(out)}
    progress = [e for e in got if e["event"] == "progress"]
    assert [e["done"] for e in progress][:4] == [0, 2, 4, 6]  # the total first, then one per batch of 2
    assert {e["total"] for e in progress} == {24}  # 4 rows x 6 columns of 64 px tiles, 48 px apart
    done = got[-1]
    assert done["event"] == "done" and done["output"] == str(out) and done["tiles"] == 24
    assert done["objects"] == progress[-1]["objects"] == sum(done["classes"].values()) > 0
    assert "tiles/s" not in result.output  # no plain progress lines, no bar


def test_detect_interrupted_names_the_journal_and_the_option(
    scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detect_job, "load_detector", lambda *a, **k: SignallingPredictor(signal.SIGTERM))
    out = tmp_path / "out.gpkg"
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), *OPTS])
    assert result.exit_code == 143, result.output
    assert events(result.output)[-1] == {"event": "interrupted", "command": "detect", "output": str(out),
                                         "journal": str(journal_dir(out)),
                                         "resume": "run the same command with --resume"}


def test_train_events_and_the_closing_one(capsys: pytest.CaptureFixture[str]) -> None:
    show = JsonTrainProgress()
    with show:
        show(TrainEvent("start", epoch=1, iteration=0, total_iters=4, epochs=2))
        show(TrainEvent("iter", epoch=1, iteration=1, total_iters=4, epochs=2, losses={"loss": 1.234567},
                        lr=0.01, images_per_s=2.5, eta_s=3.04))
        show(TrainEvent("checkpoint", epoch=1, iteration=2, total_iters=4, path=Path("w/last.safetensors")))
    result = SimpleNamespace(interrupted=None, iterations=4, completed=True, work_dir=Path("w"),
                             last_checkpoint=Path("w/last.safetensors"), best_checkpoint=None,
                             calibration={"score_thr": 0.3}, seconds=1.23456)
    train_end_event(result)
    train_end_event(SimpleNamespace(**{**vars(result), "interrupted": "SIGTERM", "iterations": 2,
                                       "work_dir": Path("my runs/w")}))
    got = events(capsys.readouterr().err)
    assert got == [
        {"event": "start", "command": "train", "done": 0, "total": 4, "epoch": 1, "epochs": 2},
        {"event": "progress", "command": "train", "done": 1, "total": 4, "epoch": 1, "epochs": 2,
         "losses": {"loss": 1.23457}, "lr": 0.01, "images_per_s": 2.5, "eta_s": 3.0},
        {"event": "checkpoint", "command": "train", "path": "w/last.safetensors", "done": 2},
        {"event": "done", "command": "train", "done": 4, "completed": True, "last_checkpoint": "w/last.safetensors",
         "work_dir": "w", "best_checkpoint": None, "score_thr": 0.3, "elapsed_s": 1.235},
        {"event": "interrupted", "command": "train", "signal": "SIGTERM", "done": 2,
         "last_checkpoint": "w/last.safetensors", "work_dir": "my runs/w",
         "resume": "fsanet train --resume --work-dir 'my runs/w'"},
    ]
