"""What the spawned processes of ``test_distributed_detect.py`` run (importable by them).

:func:`run_jobs` joins a 2-process gloo group on 127.0.0.1 and runs detection jobs one
after the other, writing each process's outcome (what it returned, the error it raised,
the progress it saw) as ``<job>-<rank>.json`` for the test to check.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from scene_helpers import PaintedPredictor

from fsanet_geo.geo.detect.run import DetectProgress
from fsanet_geo.geo.settings import DetectSettings


@dataclass
class Job:
    """One distributed detection call: ``kind`` "file" (to ``output``) or "frame" (pickled by rank 0)."""

    name: str
    kind: str
    scenes: list[Path]
    settings: DetectSettings
    output: Path | None = None
    predictor: Any = field(default_factory=PaintedPredictor)
    blocks_per_round: int = 1
    scenes_by_rank: dict[int, list[Path]] | None = None


class FailingPredictor(PaintedPredictor):
    """The painted-objects predictor, raising RuntimeError from its ``call``-th call on process ``rank``."""

    def __init__(self, rank: int, call: int) -> None:
        super().__init__()
        self.fail_rank = rank
        self.fail_call = call

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        if int(os.environ["RANK"]) == self.fail_rank and self.calls + 1 >= self.fail_call:
            raise RuntimeError("the predictor broke on purpose")
        return super().__call__(images)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_jobs(rank: int, world_size: int, port: int, jobs: list[Job], results: Path) -> None:
    """Process ``rank``: join the group, run every job, record the outcomes (never raises for a job)."""
    from fsanet_geo.geo.detect.distributed_detect import (
        detect_scenes_distributed,
        detect_to_file_distributed,
        init_detect_context,
    )

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    ctx = init_detect_context("cpu", timeout=datetime.timedelta(seconds=60))
    try:
        for job in jobs:
            events: list[DetectProgress] = []
            scenes = job.scenes_by_rank[rank] if job.scenes_by_rank else job.scenes
            outcome: dict[str, Any] = {"error": None, "returned": None}
            start = time.perf_counter()
            try:
                if job.kind == "file":
                    assert job.output is not None
                    summary = detect_to_file_distributed(
                        scenes, job.predictor, job.output, settings=job.settings, progress=events.append,
                        context=ctx, blocks_per_round=job.blocks_per_round,
                    )
                    if summary is not None:
                        outcome["returned"] = {"detections": summary.progress.detections,
                                               "resumed": summary.resumed_tiles, "output": str(summary.output)}
                else:
                    frame = detect_scenes_distributed(scenes, job.predictor, settings=job.settings,
                                                      progress=events.append, context=ctx,
                                                      blocks_per_round=job.blocks_per_round)
                    if frame is not None:
                        frame.to_pickle(results / f"{job.name}.pkl")
                        outcome["returned"] = len(frame)
            except Exception as exc:  # noqa: BLE001 - the test checks it
                outcome["error"] = [type(exc).__name__, str(exc)]
            outcome["seconds"] = time.perf_counter() - start
            outcome["events"] = [[e.tiles_done, e.tiles_total, e.finished] for e in events]
            (results / f"{job.name}-{rank}.json").write_text(json.dumps(outcome))
    finally:
        ctx.close()


def read_outcomes(results: Path, name: str, world_size: int = 2) -> list[dict[str, Any]]:
    """The outcomes of job ``name``, by rank."""
    return [json.loads((results / f"{name}-{r}.json").read_text()) for r in range(world_size)]


__all__ = ["FailingPredictor", "Job", "free_port", "read_outcomes", "run_jobs"]
