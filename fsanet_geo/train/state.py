"""The training-state file that ``resume`` reads: never unpickled.

One file, written atomically (temporary file then rename), holds everything needed to
continue a run: model weights, optimiser and AMP scaler state, the global iteration
(which fixes the epoch and the position inside it), the best validation AP so far and
the RNG states of torch, numpy and python. It contains only tensors, numbers,
strings, lists and dicts, and is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsanet_geo.errors import CheckpointError
from fsanet_geo.io_utils import atomic_path

STATE_FORMAT = "fsanet-train-state"
STATE_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """RNG states of torch (CPU and CUDA), numpy and python as tensors and lists."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": str(kind), "keys": [int(k) for k in keys], "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": [int(v) for v in py_state],
                   "gauss": None if gauss is None else float(gauss)},
    }


def restore_rng(states: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only where the devices exist)."""
    torch.set_rng_state(states["torch"])
    cuda_states = states.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    n = states["numpy"]
    np.random.set_state((n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def save_training_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and primitives only) atomically to ``path``."""
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a file written by :func:`save_training_state` (``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no training state at {p}: nothing to resume from")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means an unusable file
        raise CheckpointError(f"cannot read the training state {p}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{p} is not an fsanet training state")
    if state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{p} has training-state version {state.get('version')}, "
                              f"this build reads version {STATE_VERSION}")
    return state
