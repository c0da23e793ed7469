"""Checkpoints: one safetensors file, the model config (JSON) in its metadata.

Metadata keys: ``format`` = ``"fsanet-geo"``, ``format_version`` = ``"1"``, ``config`` =
the :class:`ModelConfig` as JSON (preset, classes, normalisation, inference settings),
plus any caller-supplied string pairs (e.g. the epoch). Loading never unpickles: only
safetensors is read. Every failure is a :class:`CheckpointError` naming the problem.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import Tensor

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.io_utils import atomic_path, file_sha256
from fsanet_geo.model.config import ModelConfig
from fsanet_geo.model.detector import FSANet
from fsanet_geo.model.files.fold_bn import fold_batchnorm, is_folded
from fsanet_geo.model.files.imagery import imagery_from_metadata

FORMAT = "fsanet-geo"
FORMAT_VERSION = "1"
_RESERVED = ("format", "format_version", "config")
_MAX_LISTED = 3


def save_checkpoint(
    model: FSANet,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    extra_metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model``'s weights and config to ``path`` atomically; returns the path.

    Raises :class:`FileOverwriteError` when ``path`` exists and ``overwrite`` is false,
    :class:`ConfigError` when ``extra_metadata`` uses a reserved key or a non-string value.
    """
    from safetensors.torch import save_file

    inner = getattr(model, "module", None)  # DistributedDataParallel / DataParallel wrapper
    if isinstance(inner, FSANet):
        model = inner
    config: ModelConfig | None = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise ConfigError("save_checkpoint needs an FSANet model (with a ModelConfig .config)")
    if is_folded(model):
        raise ConfigError("this model has its BatchNorm folded for inference; save the unfolded model")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(config.to_dict()),
    }
    for key, value in (extra_metadata or {}).items():
        if key in _RESERVED:
            raise ConfigError(f"extra metadata key {key!r} is reserved")
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"extra metadata must map str to str, got {key!r}: {value!r}")
        metadata[key] = value
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} is not a file")
    return p


def _read_header(p: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """(metadata, {key: shape}) of a safetensors file, or a CheckpointError."""
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not readable"
        raise CheckpointError(
            f"{p} is not a readable safetensors checkpoint (truncated or another format): {exc}"
        ) from exc
    return metadata, shapes


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an fsanet-geo checkpoint (validated format and version)."""
    p = _check_file(path)
    metadata, _ = _read_header(p)
    return _validated_metadata(p, metadata)


def _validated_metadata(p: Path, metadata: dict[str, str]) -> dict[str, str]:
    return check_format_metadata(p, metadata, fmt=FORMAT, version=FORMAT_VERSION,
                                 kind="a safetensors file", ours="an fsanet-geo checkpoint", version_name="checkpoint")


def check_format_metadata(
    p: Path, metadata: dict[str, str], *, fmt: str, version: str, kind: str, ours: str, version_name: str
) -> dict[str, str]:
    """``metadata`` when its ``format`` is ``fmt``, its ``format_version`` ``version`` and it holds
    a ``config``; else a :class:`CheckpointError` naming the problem. Shared by the safetensors
    checkpoints and the ONNX exports (``kind``: what the file is, ``ours``: what it should be)."""
    if metadata.get("format") != fmt:
        raise CheckpointError(
            f"{p} is {kind} but not {ours} (metadata 'format' is {metadata.get('format')!r}, expected {fmt!r})"
        )
    if metadata.get("format_version") != version:
        raise CheckpointError(
            f"{p} has {version_name} format version {metadata.get('format_version')!r}; "
            f"this version of fsanet-geo reads version {version}"
        )
    if "config" not in metadata:
        raise CheckpointError(f"{p} has no model config in its metadata")
    return metadata


def _config_from_metadata(p: Path, metadata: dict[str, str]) -> ModelConfig:
    from fsanet_geo.model.presets import list_presets

    try:
        data = json.loads(metadata["config"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: the model config in its metadata is not JSON ({exc})") from exc
    preset = data.get("preset") if isinstance(data, dict) else None
    valid = [*list_presets(), "custom"]
    if preset not in valid:
        raise CheckpointError(
            f"{p} was saved from unknown preset {preset!r}; known presets: {', '.join(valid)}"
        )
    try:
        return ModelConfig.from_dict(data)
    except ConfigError as exc:
        raise CheckpointError(f"{p}: invalid model config in its metadata: {exc}") from exc


def read_checkpoint_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The :class:`ModelConfig` stored in a checkpoint (no weights are read)."""
    p = _check_file(path)
    metadata, _ = _read_header(p)
    return _config_from_metadata(p, _validated_metadata(p, metadata))


def _mismatches(expected: dict[str, Tensor], found: dict[str, tuple[int, ...]]) -> list[str]:
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k} has shape {found[k]}, the model expects {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and tuple(v.shape) != found[k]
    ]
    return problems


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> FSANet:
    """Rebuild the model saved by :func:`save_checkpoint`, on ``device``, in eval mode.

    Raises :class:`CheckpointError` for a missing file, a file that is not (complete)
    safetensors, a safetensors file that is not ours, an unknown preset or an invalid
    config, and weights whose names or shapes do not fit the config (the first few
    offending keys are named).
    """
    from safetensors.torch import load_file

    p = _check_file(path)
    target = resolve_device(device)
    metadata, shapes = _read_header(p)
    config = _config_from_metadata(p, _validated_metadata(p, metadata))
    model = FSANet(config)
    expected = model.state_dict()
    problems = _mismatches(expected, shapes)
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED])
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise CheckpointError(
            f"the weights in {p} do not fit its config (preset {config.preset}, "
            f"{config.num_classes} classes): {listed}{more}"
        )
    try:
        state = load_file(str(p), device="cpu")
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"cannot read the weights of {p}: {exc}") from exc
    _refuse_non_finite(p, state)
    model.load_state_dict(state, strict=True)
    model.weights_sha256 = file_sha256(p)  # identifies the weights in a detection run's resume journal
    model.imagery = imagery_from_metadata(metadata, str(p))  # GSD and 8-bit levels of its training data
    return model.to(target).eval()


def _refuse_non_finite(p: Path, state: dict[str, Tensor]) -> None:
    """:class:`CheckpointError` naming the first tensor holding NaN or Inf (a run that diverged)."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                f"{p}: tensor {name} holds {bad} non-finite value(s) (NaN or Inf): "
                "the checkpoint is damaged (e.g. saved from a training run that diverged)"
            )


def load_inference_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> FSANet:
    """:func:`load_model` in eval mode with BatchNorm folded."""
    model = load_model(path, device=device)
    fold_batchnorm(model)
    return model
