"""`--threads N` on detect and train sets torch's intra-op threads; bad values are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()


@pytest.fixture
def restore_threads():  # noqa: ANN201
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["detect", "train"])
def test_threads_must_be_positive(command: str) -> None:
    result = runner.invoke(app, [command, "--threads", "0"])
    assert result.exit_code == 2
    assert "greater than or equal to 1" in " ".join(result.output.split())


def test_detect_threads_sets_torch_threads(tmp_path: Path, restore_threads: None) -> None:
    torch.set_num_threads(2)
    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"not a raster")
    out = tmp_path / "out.json"
    out.write_text("kept")
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), "--threads", "1"])
    assert result.exit_code == 2  # the output exists: refused after the options are applied
    assert torch.get_num_threads() == 1
    assert out.read_text() == "kept"


def test_train_threads_sets_torch_threads(tmp_path: Path, restore_threads: None) -> None:
    torch.set_num_threads(2)
    result = runner.invoke(app, ["train", "--threads", "1", "--dataset", "coco"])
    assert result.exit_code == 2  # no --ann / --images: one error line after the threads are set
    assert torch.get_num_threads() == 1
