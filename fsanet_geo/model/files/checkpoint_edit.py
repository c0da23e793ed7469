"""Edit a checkpoint's metadata without touching its weights: ``fsanet model set-threshold``.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor offsets
relative to the data that follows, and ``__metadata__``) and the tensor bytes. Rewriting the
metadata writes a new header and copies the tensor bytes unchanged, atomically (a temporary
file renamed onto the target), so an interrupted edit leaves the checkpoint as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.model.files.checkpoint import read_checkpoint_config
from fsanet_geo.model.config import ModelConfig

_LENGTH = struct.Struct("<Q")


def rewrite_metadata(
    path: str | os.PathLike[str],
    updates: dict[str, str],
    *,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``path`` with its metadata keys ``updates`` set to ``output`` (None: ``path``
    itself, in place); the tensor bytes are copied unchanged. Returns the written path.

    Raises :class:`CheckpointError` for a file that is not safetensors, and
    :class:`FileOverwriteError` when ``output`` exists without ``overwrite``.
    """
    source = Path(path)
    target = Path(output) if output is not None else source
    with source.open("rb") as f:
        try:
            (length,) = _LENGTH.unpack(f.read(_LENGTH.size))
            header = json.loads(f.read(length))
        except (struct.error, ValueError) as exc:
            raise CheckpointError(f"{source} is not a readable safetensors checkpoint: {exc}") from exc
        metadata = dict(header.get("__metadata__") or {})
        metadata.update(updates)
        header["__metadata__"] = metadata
        encoded = json.dumps(header, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)  # the format's recommended 8-byte alignment
        in_place = target.resolve() == source.resolve()
        with atomic_path(target, overwrite=overwrite or in_place) as tmp, tmp.open("wb") as out:
            out.write(_LENGTH.pack(len(encoded)))
            out.write(encoded)
            shutil.copyfileobj(f, out, 1 << 20)
    return target


def set_score_threshold(
    path: str | os.PathLike[str],
    value: float,
    *,
    output: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Set the checkpoint's own score threshold (``config.score_thr``, the default of
    ``fsanet detect --score-thr``) to ``value`` in [0, 1); ``output`` None edits in place.
    Calibrated per-class cuts are dropped (one threshold for every class) and the metadata
    records that the threshold was set by hand (``score_threshold_from``).

    Raises :class:`ConfigError` for a value out of range (the checkpoint is not touched).
    """
    config = read_checkpoint_config(path)
    data = config.to_dict()
    data["score_thr"] = float(value)
    data["class_score_thr"] = None
    try:
        ModelConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"score threshold {value:g} is out of range: {exc}") from exc
    updates = {"config": json.dumps(data), "score_threshold_from": f"set by hand: fsanet model set-threshold {value:g}"}
    return rewrite_metadata(path, updates, output=output, overwrite=overwrite)
