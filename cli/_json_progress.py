"""``--progress json`` of ``fsanet detect`` and ``fsanet train``: one JSON object per line on
stderr (docs/cli.md, "Machine-readable progress"); notes, warnings and errors stay text lines."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsanet_cli._run_render import DetectRenderer

if TYPE_CHECKING:
    from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary


def json_event(event: str, command: str, **fields: Any) -> None:
    """Write ``{"event": EVENT, "command": COMMAND, ...}`` as one line on stderr, flushed at once
    (paths as strings)."""
    import json
    import sys

    record = {"event": event, "command": command}
    record.update({k: str(v) if isinstance(v, Path) else v for k, v in fields.items()})
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()


class JsonDetectRenderer(DetectRenderer):
    """``fsanet detect --progress json``: ``output``, ``progress`` (after each batch of tiles),
    ``done`` (per output) and ``interrupted`` events; notes, warnings and errors stay text lines."""

    def __init__(self) -> None:
        super().__init__(plain_every_s=float("inf"))

    def output_started(self, output: Path) -> None:
        self.output, self.started = output, time.perf_counter()
        json_event("output", "detect", output=output)

    def progress(self, output: Path, p: DetectProgress) -> None:
        json_event("progress", "detect", done=p.tiles_done, total=p.tiles_total, skipped=p.tiles_skipped,
                   objects=p.detections, scene=p.scene, scene_index=p.scene_index, scenes=p.scenes,
                   elapsed_s=round(p.elapsed_s, 3), output=output)

    def output_finished(self, summary: DetectSummary) -> None:
        p = summary.progress
        json_event("done", "detect", output=summary.output, objects=p.detections, classes=p.class_counts,
                   tiles=p.tiles_total, skipped=p.tiles_skipped, resumed=summary.resumed_tiles,
                   unreadable=len(summary.unreadable), elapsed_s=round(time.perf_counter() - self.started, 3))

    def interrupted(self) -> None:
        """The ``interrupted`` event: the journal kept (or null) and the option that continues."""
        from fsanet_geo.geo.outputs.journal import journal_dir

        super().interrupted()
        journal = journal_dir(self.output) if self.output is not None else None
        kept = journal is not None and journal.is_dir()
        json_event("interrupted", "detect", output=self.output, journal=journal if kept else None,
                   resume="run the same command with --resume" if kept else None)


class JsonTrainProgress:
    """``fsanet train --progress json``: ``start``, ``progress`` (each iteration), ``val``,
    ``checkpoint`` events; :func:`train_end_event` gives ``done`` or ``interrupted``."""

    def __enter__(self) -> JsonTrainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, event: Any) -> None:
        where = {"epoch": event.epoch, "epochs": event.epochs}
        if event.kind == "start":
            json_event("start", "train", done=event.iteration, total=event.total_iters, **where)
        elif event.kind == "iter":
            json_event("progress", "train", done=event.iteration, total=event.total_iters, **where,
                       losses={k: round(v, 5) for k, v in event.losses.items()}, lr=event.lr,
                       images_per_s=round(event.images_per_s, 3), eta_s=round(event.eta_s, 1))
        elif event.kind == "val":
            json_event("val", "train", **where, metrics={k: v for k, v in event.metrics.items() if k != "classes"})
        elif event.kind == "checkpoint":
            json_event("checkpoint", "train", path=event.path, done=event.iteration)


def train_end_event(result: Any) -> None:
    """The last JSON event of ``fsanet train --progress json``: ``interrupted`` (with the
    command that resumes) or ``done`` (checkpoints, calibrated score threshold)."""
    paths = {"last_checkpoint": result.last_checkpoint, "work_dir": result.work_dir}
    if result.interrupted:
        json_event("interrupted", "train", signal=result.interrupted, done=result.iterations, **paths,
                   resume=f"fsanet train --resume --work-dir {shlex.quote(str(result.work_dir))}")
        return
    cal = result.calibration or {}
    json_event("done", "train", done=result.iterations, completed=result.completed, **paths,
               best_checkpoint=result.best_checkpoint, score_thr=cal.get("score_thr"),
               elapsed_s=round(result.seconds, 3))
