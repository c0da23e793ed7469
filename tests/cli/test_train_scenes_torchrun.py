"""`fsanet train --scene --labels` under torchrun (2 gloo processes): one set of files, the
run's notes once, validation on rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fsanet_geo.model.files.checkpoint import read_checkpoint_config
from fsanet_geo.synth.labelled_scene import make_labelled_scene


@pytest.mark.slow
def test_two_processes_train_on_a_scene(tmp_path: Path) -> None:
    scene = make_labelled_scene(tmp_path / "scene", size=384, holdout=128, density=4.0, classes=("vehicle", "ship"),
                                seed=15)
    work = tmp_path / "run"
    args = ["train", "--scene", scene.image, "--labels", scene.labels, "--class-field", "class",
            "--model", "fsanet_r18_tiny", "--input-size", "128", "--batch-size", "2", "--max-iters", "2",
            "--val-fraction", "0.25", "--device", "cpu", "--workers", "0", "--work-dir", work]
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "fsanet_cli.main", *map(str, args)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "labelled objects (ship " in notes[0], notes
    assert done.stderr.count("training on 1 scene with vector labels, validating on 25% of the labelled area") == 1
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["type"] == "train"] == [1, 2]
    assert [r["iter"] for r in records if r["type"] == "val"] == [2]  # once, where --max-iters stopped
    assert list(read_checkpoint_config(work / "best.safetensors").class_names) == ["ship", "vehicle"]
    assert {p.name for p in work.iterdir()} >= {"config.json", "last.safetensors", "last.state.pt", "best.safetensors"}
