"""Shared fixtures for the training tests: a tiny synthetic AI-TOD tree and configs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fsanet_geo.train.config import TrainConfig


@pytest.fixture(scope="session")
def tiny_aitod(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 synthetic 128 x 128 images in the toolkit layout (trainval 5, test 1)."""
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    return generate_synthetic_aitod(tmp_path_factory.mktemp("data") / "aitod6", 6, seed=0, size=128)


@pytest.fixture()
def tiny_config() -> Callable[..., TrainConfig]:
    """``tiny_config(data_root, work_dir, **changes)`` builds :func:`make_tiny_config`."""
    return make_tiny_config


def make_tiny_config(root: Path, work_dir: Path, **changes: Any) -> TrainConfig:
    """The from-scratch P3-P5 preset on CPU at 128 px, batch 2, no workers, no validation."""
    fields: dict[str, Any] = {
        "dataset": "aitod", "data_root": str(root), "batch_size": 2, "input_size": 128,
        "num_workers": 0, "device": "cpu", "lr": 0.01, "warmup_iters": 2, "val_interval": 0,
        "work_dir": str(work_dir), "epochs": 2, "lr_steps": (1,),
    }
    fields.update(changes)
    return TrainConfig.for_preset(fields.pop("model", "fsanet_r18_medium"), **fields)
