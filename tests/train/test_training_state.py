"""The training-state file: weights_only round trip of optimiser and RNG states."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from fsanet_geo.errors import CheckpointError
from fsanet_geo.train.state import capture_rng, load_training_state, restore_rng, save_training_state


def test_round_trip_restores_optimizer_and_rngs(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = {"iteration": 7, "best_ap": None, "model": model.state_dict(),
             "optimizer": opt.state_dict(), "rng": capture_rng()}
    expected = (torch.rand(2), np.random.rand(2), random.random(), np.random.randn())
    path = save_training_state(tmp_path / "last.state.pt", state)

    loaded = load_training_state(path)
    assert loaded["iteration"] == 7 and loaded["best_ap"] is None
    opt2 = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(loaded["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"], opt.state_dict()["state"][0]["momentum_buffer"])
    restore_rng(loaded["rng"])
    again = (torch.rand(2), np.random.rand(2), random.random(), np.random.randn())
    assert torch.equal(again[0], expected[0])
    assert np.array_equal(again[1], expected[1])
    assert again[2:] == expected[2:]


def test_refuses_pickled_objects_and_foreign_files(tmp_path: Path) -> None:
    bad = tmp_path / "evil.pt"  # any non-allow-listed class must be refused, not unpickled
    torch.save({"format": "fsanet-train-state", "version": 1, "x": Fraction(1, 3)}, bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_training_state(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not an fsanet training state"):
        load_training_state(other)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CheckpointError):
        load_training_state(truncated)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        load_training_state(tmp_path / "missing.pt")
