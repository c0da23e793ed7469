"""`fsanet train --scene/--labels` and `fsanet data` on inputs a user gets wrong: one line,
exit code 2, nothing started or lost (found by probing the feature as a new user)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.synth.labelled_scene import LabelledScene, make_labelled_scene

runner = CliRunner()
TINY = ("--model", "fsanet_r18_tiny", "--input-size", "128", "--batch-size", "2", "--workers", "0",
        "--device", "cpu", "--epochs", "1", "--max-iters", "1")


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return " ".join(lines[0].split())


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> LabelledScene:
    return make_labelled_scene(tmp_path_factory.mktemp("scene"), size=384, holdout=128, density=4.0,
                               classes=("vehicle",), seed=15)


def test_bands_of_another_count_than_the_model_takes_are_refused_before_training(
        scene: LabelledScene, tmp_path: Path) -> None:
    work = tmp_path / "run"
    result = invoke("train", "--scene", scene.image, "--labels", scene.labels, "--bands", "1,2",
                    *TINY, "--work-dir", work)
    assert result.exit_code == 2
    assert error_line(result) == "error: 2 band(s) selected but the model takes 3 channel(s)"
    assert not work.exists()
