"""What a resume journal must match: everything that changes a run's detections.

The fingerprint is built generically, so that a new option is covered without touching
this module: every field of :class:`DetectSettings` except the few that only change *how*
the run goes (:data:`RUN_ONLY_SETTINGS`), the tiling actually applied, the scene and AOI files
(path, size, modification time; a remote scene by its URL), and the model: its weights' SHA-256 (the checkpoint file's,
computed once at load; a ``torch.nn.Module`` without one is hashed tensor by tensor), its
config (``config.to_dict()`` or the dataclass) and its class names.

:func:`describe_changes` names what differs between two fingerprints, with both values,
for the refusal of a mismatched ``--resume``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsanet_geo.geo.pixels.remote import file_identity
from fsanet_geo.io_utils import file_sha256  # noqa: F401 - part of this module's API

RUN_ONLY_SETTINGS = ("device", "read_threads", "prefetch", "gdal_cache_mb", "resume", "sink_rows", "batch_size",
                     "retry_seconds")
"""Settings that do not change the detections, so a journal may be resumed with others."""

FINGERPRINT_VERSION = 2
_MAX_LISTED = 4
_MAX_VALUE = 60


def module_sha256(module: Any) -> str:
    """Hex SHA-256 over a torch module's state dict (names, dtypes, shapes and bytes, in name order)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.dtype == torch.bfloat16:  # no numpy dtype: hash its raw 16-bit words
            t = t.view(torch.int16)
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def model_identity(predictor: Any) -> dict[str, Any]:
    """The model part of a fingerprint: weights hash, config and class names.

    ``weights_sha256``: the predictor's attribute of that name (set by
    :func:`fsanet_geo.model.files.checkpoint.load_model` and any loader that knows its file); else
    the hash of a ``torch.nn.Module``'s tensors; else the predictor's type name (a plain
    callable cannot be told apart from another one of the same type).
    """
    weights = getattr(predictor, "weights_sha256", None)
    if weights is None and _is_module(predictor):
        weights = module_sha256(predictor)
    config = getattr(predictor, "config", None)
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    kind = type(predictor)
    return {
        "weights_sha256": weights if weights is not None else f"{kind.__module__}.{kind.__qualname__}",
        "config": config,
        "class_names": [str(c) for c in (getattr(predictor, "class_names", None) or [])],
    }


def _is_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(obj, torch.nn.Module)


def run_fingerprint(
    settings: Any, predictor: Any, scene_paths: Sequence[Path], tile_size: int, overlap: int
) -> dict[str, Any]:
    """The fingerprint of a run (JSON-safe): scenes, settings, tiling and model; see the module docstring."""
    options = dataclasses.asdict(settings)
    for key in RUN_ONLY_SETTINGS:
        options.pop(key, None)
    scenes = [file_identity(path) for path in scene_paths]
    if options.get("aoi") is not None:  # its polygons choose the tiles
        options["aoi"] = file_identity(Path(options["aoi"]))
    return jsonable({
        "version": FINGERPRINT_VERSION,
        "scenes": scenes,
        "settings": options,
        "tiling": {"tile_size": tile_size, "overlap": overlap},
        "model": model_identity(predictor),
    })


def jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, other objects strings)."""
    return json.loads(json.dumps(value, default=str))


def describe_changes(saved: Any, now: Any) -> str:
    """What differs from ``saved`` to ``now``, e.g. ``settings.score_thr: 0.3 then, 0.5 now``."""
    if not isinstance(saved, dict) or saved.get("version") != now.get("version"):
        return "it was made by another version of fsanet-geo"
    old, new = _flatten(saved), _flatten(now)
    changed = [k for k in sorted(old.keys() | new.keys()) if old.get(k, _MISSING) != new.get(k, _MISSING)]
    listed = [f"{_name(k)}: {_show(old.get(k, _MISSING))} then, {_show(new.get(k, _MISSING))} now"
              for k in changed[:_MAX_LISTED]]
    more = f" (and {len(changed) - _MAX_LISTED} more)" if len(changed) > _MAX_LISTED else ""
    return "; ".join(listed) + more


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


_MISSING = _Missing()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to leaves; scenes are keyed by their position (``scenes.0.size``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): value}


_NAMES = {"model.weights_sha256": "weights (SHA-256)", "tiling.tile_size": "tile size", "tiling.overlap": "overlap"}


def _name(key: str) -> str:
    if key in _NAMES:
        return _NAMES[key]
    parts = key.split(".")
    if parts[0] == "settings":
        return ".".join(parts[1:])
    if parts[0] == "scenes" and len(parts) == 3:
        return f"scene {int(parts[1]) + 1} {parts[2]}"
    return key


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value) if not isinstance(value, _Missing) else "(none)"
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]  # a SHA-256
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 3] + "..."
