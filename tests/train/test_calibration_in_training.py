"""A validating run stores the F1-best score cuts in its model files, and a resume keeps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fsanet_geo.model.files.checkpoint import load_model, read_checkpoint_config, read_checkpoint_metadata
from fsanet_geo.train import engine
from fsanet_geo.train.engine import train


def _calibrated_metrics(model: Any, dataset: Any, **_: Any) -> dict[str, Any]:
    """What validation_metrics returns when the cuts differ per class (8 AI-TOD classes here)."""
    cuts = [0.3 + 0.05 * k for k in range(len(dataset.class_names))]
    point = {"score_thr": 0.35, "precision": 0.8, "recall": 0.7, "f1": 0.7467, "tp": 7, "fp": 2, "fn": 3}
    return {"AP": 0.1, "AP50": 0.2, "score_thr": 0.35, "class_score_thr": cuts,
            "calibration": {"iou": 0.5, **point, "classes": {dataset.class_names[0]: {**point, "score_thr": 0.3}}},
            "precision": 0.8, "recall": 0.7, "classes": {}}


def test_validation_cuts_reach_every_model_file_and_the_result(
        tiny_aitod: Path, tmp_path: Path, tiny_config: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "validation_metrics", _calibrated_metrics)
    work = tmp_path / "run"
    result = train(tiny_config(tiny_aitod, work, epochs=1, val_interval=1))
    assert result.calibration is not None and result.calibration["precision"] == 0.8
    assert result.calibration["epoch"] == 1 and result.calibration["iteration"] == result.iterations
    for name in ("best", "last", "epoch_1"):
        path = work / f"{name}.safetensors"
        config = read_checkpoint_config(path)
        assert config.class_score_thr == pytest.approx([0.3 + 0.05 * k for k in range(config.num_classes)])
        assert config.score_thr == pytest.approx(0.3)  # their minimum: the pre-NMS cut loses nothing
        stored = json.loads(read_checkpoint_metadata(path)["calibration"])
        assert stored["recall"] == 0.7 and stored["iou"] == 0.5
    model = load_model(work / "best.safetensors")
    assert model.postprocessor.class_score_thr == pytest.approx(model.config.class_score_thr)


def test_a_resumed_run_keeps_its_cuts(tiny_aitod: Path, tmp_path: Path, tiny_config: Any,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "validation_metrics", _calibrated_metrics)
    work = tmp_path / "run"
    train(tiny_config(tiny_aitod, work, epochs=2, val_interval=1, max_iters=2))
    monkeypatch.setattr(engine, "validation_metrics",
                        lambda *a, **k: {"AP": 0.0, "calibration": None, "class_score_thr": None})
    train(tiny_config(tiny_aitod, work, epochs=2, val_interval=1, resume=True))
    config = read_checkpoint_config(work / "last.safetensors")
    assert config.class_score_thr is not None and config.score_thr == pytest.approx(0.3)
    assert "calibration" in read_checkpoint_metadata(work / "last.safetensors")
