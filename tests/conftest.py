"""Session settings: under pytest-xdist each worker takes its share of the cores for torch's
intra-op threads (two workers of two threads each on two cores spend their time spinning)."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
