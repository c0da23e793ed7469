"""Device selection: ``auto | cpu | cuda | cuda:N``."""

from __future__ import annotations

import torch

from fsanet_geo.errors import DeviceError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a user device string into a usable :class:`torch.device`.

    ``auto`` picks ``cuda`` when available, else ``cpu``. Asking for CUDA on a machine
    without it (or for a GPU index that does not exist) raises :class:`DeviceError`.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available here")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device
