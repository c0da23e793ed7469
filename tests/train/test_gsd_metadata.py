"""Training records the ground sample distance of its data; `fsanet model info` shows it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fsanet_cli.main import app
from fsanet_geo.model.files.checkpoint import load_model, read_checkpoint_metadata
from fsanet_geo.train.engine import train


def test_checkpoints_carry_the_given_gsd(tiny_aitod: Path, tmp_path: Path, tiny_config: Any) -> None:
    work = tmp_path / "run"
    train(tiny_config(tiny_aitod, work, max_iters=1, val_interval=0, gsd=0.3))
    assert read_checkpoint_metadata(work / "last.safetensors")["gsd"] == "0.3"
    model = load_model(work / "last.safetensors", "cpu")
    assert model.imagery.gsd == 0.3
    result = CliRunner().invoke(app, ["model", "info", "--json", str(work / "last.safetensors")])
    assert result.exit_code == 0, result.output
    assert '"gsd": 0.3' in result.output


def test_checkpoints_carry_the_levels_of_the_training_images(tiny_aitod: Path, tmp_path: Path,
                                                              tiny_config: Any) -> None:
    """detect stretches 16-bit scenes to these levels (not 0..255): measured on the training set."""
    import numpy as np

    from fsanet_geo.data.dataset import read_image
    from fsanet_geo.train.builders import build_datasets

    work = tmp_path / "run"
    config = tiny_config(tiny_aitod, work, max_iters=1, val_interval=0)
    train(config)
    train_set, _ = build_datasets(config)
    pixels = np.concatenate([read_image(r.path).numpy().reshape(3, -1) for r in train_set.records], axis=1)
    low, high = np.percentile(pixels, [2, 98], axis=1)  # the tiny set is small: every image is measured
    imagery = load_model(work / "last.safetensors", "cpu").imagery
    assert imagery.gsd is None and imagery.percentiles == (2.0, 98.0)
    np.testing.assert_allclose(imagery.low, low, atol=1e-9)
    np.testing.assert_allclose(imagery.high, high, atol=1e-9)
    assert all(h > lo for lo, h in zip(imagery.low, imagery.high))


def test_the_demo_model_reports_its_gsd() -> None:
    from fsanet_geo.geo.detect.detect_job import demo_weights_path

    result = CliRunner().invoke(app, ["model", "info", str(demo_weights_path())])
    assert result.exit_code == 0, result.output
    assert "gsd (m/pixel)" in result.output and "0.5" in result.output
    assert "30..177; 55..167; 32..130" in result.output
