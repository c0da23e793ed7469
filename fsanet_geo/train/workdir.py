"""The work dir of a training run: its file names, the rules for reusing it, the saved
config and the metrics log.

Files in the work dir (all written by rank 0, each atomically):
  ``config.json``           the :class:`TrainConfig` of the run;
  ``metrics.jsonl``         one JSON object per logged step (``"type": "train"``) and
                            per validation (``"type": "val"``);
  ``epoch_{N}.safetensors`` the model after epoch N (1-based), every ``save_interval``;
  ``last.safetensors``      the latest model (readable by ``load_model``/``fsanet eval``);
  ``last.state.pt``         the full training state ``resume`` reads (see ``state.py``);
  ``best.safetensors``      the model with the best validation AP.

``last.state.pt`` is written before ``last.safetensors`` and holds the model weights
too, so resuming never depends on a pair of files being consistent
(see :mod:`fsanet_geo.train.checkpointing`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from fsanet_geo.errors import CheckpointError, ConfigError, FileOverwriteError
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.train.config import TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LAST_MODEL = "last.safetensors"
LAST_STATE = "last.state.pt"
BEST_MODEL = "best.safetensors"
_OUR_FILES = (CONFIG_FILE, METRICS_FILE, LAST_MODEL, LAST_STATE, BEST_MODEL)


def epoch_model_name(epoch: int) -> str:
    """File name of the model saved after ``epoch`` (1-based)."""
    return f"epoch_{epoch}.safetensors"


def read_saved_config(work_dir: str | os.PathLike[str]) -> TrainConfig:
    """The :class:`TrainConfig` a run saved in ``work_dir``; :class:`CheckpointError` if
    there is none or it is not a training config."""
    saved_path = Path(work_dir) / CONFIG_FILE
    if not saved_path.is_file():
        raise CheckpointError(f"cannot resume: {saved_path} does not exist")
    try:
        data = json.loads(saved_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"cannot resume: {saved_path} is not valid JSON") from exc
    try:
        return TrainConfig.from_dict(data)
    except TypeError as exc:
        raise CheckpointError(f"cannot resume: {saved_path} is not a training config: {exc}") from exc


def resumed_config(work_dir: str | os.PathLike[str], **changes: Any) -> TrainConfig:
    """The saved config of ``work_dir`` set to resume, with ``changes`` applied (None
    values are ignored: "not given"). Settings a resume must keep are checked when the
    run starts (:func:`prepare_work_dir`)."""
    saved = read_saved_config(work_dir)
    given = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(saved, work_dir=os.fspath(work_dir), resume=True, overwrite=False, **given)


def prepare_work_dir(config: TrainConfig, *, write: bool) -> TrainConfig | None:
    """Check the work dir; return the saved config when resuming.

    A non-empty work dir is refused unless ``resume`` or ``overwrite``; with
    ``overwrite`` the files of a previous run (and only those) are removed when
    ``write`` is true. A resumed run must have a training state and keep the
    :data:`~fsanet_geo.train.config.RESUME_FIXED` settings (:class:`ConfigError`).
    """
    work = config.work_path
    if config.resume:
        state = work / LAST_STATE
        if not state.is_file():
            raise CheckpointError(f"cannot resume: {state} does not exist")
        saved = read_saved_config(work)
        changed = config.resume_mismatches(saved)
        if changed:
            details = ", ".join(
                f"{name} {saved.setting(name)!r} -> {config.setting(name)!r}" for name in changed
            )
            raise ConfigError(f"cannot resume {work} with different settings: {details}")
        return saved
    if work.exists() and not work.is_dir():
        raise FileOverwriteError(f"work dir {work} exists and is not a folder")
    if work.is_dir() and any(work.iterdir()):
        if not config.overwrite:
            raise FileOverwriteError(
                f"work dir {work} is not empty: use --resume to continue its run "
                "or --overwrite to start a new one there"
            )
        if write:
            for path in [*(work / name for name in _OUR_FILES), *work.glob("epoch_*.safetensors")]:
                path.unlink(missing_ok=True)
    if write:
        work.mkdir(parents=True, exist_ok=True)
    return None


def write_config(config: TrainConfig) -> Path:
    """Save ``config`` as the work dir's ``config.json`` (atomically); return its path."""
    path = config.work_path / CONFIG_FILE
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")
    return path


class MetricsLog:
    """The work dir's ``metrics.jsonl``, open for appending one JSON record per line.

    ``truncate_after`` (on resume) first drops the records past that iteration, and
    any line cut short by a kill.
    """

    def __init__(self, work_dir: str | os.PathLike[str], *, truncate_after: int | None = None) -> None:
        self.path = Path(work_dir) / METRICS_FILE
        if truncate_after is not None and self.path.is_file():
            kept = [line for line in _whole_lines(self.path)
                    if json.loads(line).get("iter", 0) <= truncate_after]
            with atomic_path(self.path, overwrite=True) as tmp:
                tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self._file: TextIO = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` and flush (a kill loses at most the line being written)."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _whole_lines(path: Path) -> Iterator[str]:
    """The non-empty lines of ``path`` that parse as JSON."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: drop it
            yield line
