"""The resume journal of a detection run writing to a file.

Design: tiles are processed in a fixed order, so the finished work of a scene is a prefix
of its tile list. After each batch the journal stores the batch's per-tile detections
(before the cross-tile merge) as one ``.npz`` chunk, written atomically, named by the tile
range it covers. Resuming replays the chunks through a fresh merger (cheap) and continues
with the first tile not covered; as the predictor is deterministic, the final output
equals that of an uninterrupted run. ``state.json`` holds a fingerprint of the inputs and
settings so that a journal is never resumed with other ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import ConfigError, OutputError, StartingFreshWarning
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.fingerprint import describe_changes, jsonable

_CHUNK = re.compile(r"^s(\d{4})-t(\d{9})-(\d{9})\.npz$")


@dataclass
class JournalChunk:
    """Per-tile detections of tiles ``[start, end)`` of scene ``scene``; ``skipped`` tiles had no data,
    of which ``unreadable`` (tile, reason) could not be read (``skip_unreadable``)."""

    scene: int
    start: int
    end: int
    skipped: int
    detections: Detections
    unreadable: tuple[tuple[int, str], ...] = ()


def journal_dir(output: str | os.PathLike[str]) -> Path:
    """The journal folder of ``output``: ``<output>.partial`` beside it."""
    p = Path(output)
    return p.with_name(p.name + ".partial")


class DetectJournal:
    """Chunks of finished tiles in ``folder``; see the module docstring.

    ``created`` is True when this object made the folder (a new run, or ``resume`` without a
    journal), False when it reopened an existing journal to resume it.
    """

    def __init__(self, folder: Path, fingerprint: dict[str, Any], *, resume: bool) -> None:
        self.folder = folder
        self.created = False
        state = folder / "state.json"
        if resume and state.is_file():
            try:
                saved = json.loads(state.read_text())
            except (OSError, ValueError) as exc:
                raise OutputError(f"resume journal {folder} is damaged ({exc}); remove it") from exc
            if saved != jsonable(fingerprint):
                raise ConfigError(
                    f"resume journal {folder} was made with other scenes or settings "
                    f"({describe_changes(saved, jsonable(fingerprint))}): "
                    "run with the same ones, or without --resume to start over"
                )
            return
        if folder.exists() and not resume and not self.is_empty():
            warnings.warn(f"{folder} holds the finished tiles of an interrupted run: starting fresh "
                          "(they are discarded; --resume continues them)", StartingFreshWarning, stacklevel=2)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        self.created = True
        try:
            _write_atomic(state, json.dumps(jsonable(fingerprint), indent=1).encode())
        except BaseException:
            self.remove()
            raise

    def is_empty(self) -> bool:
        """True when no chunk (of any scene) has been recorded: there is nothing to resume."""
        return self.holds_no_tiles(self.folder)

    @staticmethod
    def holds_no_tiles(folder: Path) -> bool:
        """True when ``folder`` is no journal or holds no finished chunk."""
        if not folder.is_dir():
            return True
        return not any(_CHUNK.match(f.name) for f in folder.iterdir())

    def chunks(self, scene: int) -> Iterator[JournalChunk]:
        """The chunks of ``scene`` forming a contiguous prefix from tile 0, in order."""
        for start, end, f in self._prefix(scene):
            with np.load(f) as z:
                dets = Detections(z["boxes"], z["scores"], z["labels"], z["tile"])
                skipped = int(z["skipped"])
                bad = (tuple(zip(z["unreadable"].tolist(), z["unreadable_reason"].tolist()))
                       if "unreadable" in z.files else ())
            yield JournalChunk(scene, start, end, skipped, dets, bad)

    def done_until(self, scene: int) -> int:
        """The first tile of ``scene`` not covered by the chunks :meth:`chunks` yields (0: none)."""
        prefix = self._prefix(scene)
        return prefix[-1][1] if prefix else 0

    def _prefix(self, scene: int) -> list[tuple[int, int, Path]]:
        """(start, end, file) of the chunks of ``scene`` that form a contiguous prefix from tile 0."""
        ranges = []
        for f in self.folder.iterdir():
            m = _CHUNK.match(f.name)
            if m and int(m.group(1)) == scene:
                ranges.append((int(m.group(2)), int(m.group(3)), f))
        prefix = []
        expected = 0
        for start, end, f in sorted(ranges):
            if start != expected:
                break
            prefix.append((start, end, f))
            expected = end
        return prefix

    def record(self, chunk: JournalChunk) -> None:
        """Store ``chunk`` atomically (a partially written chunk is never seen)."""
        name = f"s{chunk.scene:04d}-t{chunk.start:09d}-{chunk.end:09d}.npz"
        tmp = self.folder / f".{name}.tmp"
        d = chunk.detections
        with open(tmp, "wb") as fh:
            np.savez(fh, boxes=d.boxes, scores=d.scores, labels=d.labels, tile=d.tile, skipped=chunk.skipped,
                     unreadable=np.array([t for t, _ in chunk.unreadable], np.int64),
                     unreadable_reason=np.array([r for _, r in chunk.unreadable], dtype=str))
        os.replace(tmp, self.folder / name)

    def remove(self) -> None:
        """Delete the journal (after the output was written)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
