"""Two gloo processes under torchrun train like one process with the doubled batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from fsanet_geo.model.files.checkpoint import load_model
from fsanet_geo.train.engine import train

SCRIPT = """
import sys
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.engine import train
config = TrainConfig.from_dict({config})
train(config)
"""


@pytest.mark.slow
def test_two_processes_match_one_with_the_doubled_batch(
    tiny_aitod: Path, tmp_path: Path, tiny_config: Any
) -> None:
    # Frozen BatchNorm (lite, from random init on purpose): trainable BN normalises each
    # process's own batch, so only a model without batch statistics trains alike in both.
    frozen = {"model": "fsanet_r18_lite", "allow_frozen_norm_from_scratch": True}
    one = tiny_config(tiny_aitod, tmp_path / "one", batch_size=2, max_iters=3, flip_h=0.0, **frozen)
    train(one)
    two = tiny_config(tiny_aitod, tmp_path / "two", batch_size=1, max_iters=3, flip_h=0.0, **frozen)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(config=repr(two.to_dict())))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    # one set of files, written by rank 0, loadable; the same weights as one process
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    load_model(tmp_path / "two" / "last.safetensors", "cpu")
    a = load_file(tmp_path / "one" / "last.safetensors")
    b = load_file(tmp_path / "two" / "last.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5)
    log_one = (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()
    log_two = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(log_one) == len(log_two) == 3
