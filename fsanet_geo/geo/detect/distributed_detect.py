"""Detection under torch.distributed: tiles spread over processes, one merge and one output.

Launched by ``torchrun`` (``torchrun --nproc-per-node N -m fsanet_cli.main detect ...``),
every process runs the same call; W = world size, B = ``settings.batch_size``.

Sharding. The tiles of every scene (after those a resume journal already holds) are cut
into blocks of B consecutive tiles, a block never spanning two scenes; block j goes to
rank ``j % W``. Every rank gets the same number of blocks (within one), one huge scene
spreads over all ranks, and where no tile is empty (nodata) each block is exactly one
of the batches a single process forms, so even a batch-dependent predictor sees the
same batches.

Rounds. The ranks work in lock-step rounds of ``W * blocks_per_round`` blocks: each rank
predicts its blocks of the round (tiles read and scaled ahead in threads, as in one
process) and sends their per-tile detections (scene pixels, tile and scene index) to
rank 0 with ``gather_object`` over gloo. Rank 0 feeds the blocks in block order, which
is the single-process tile order, through the very steps of
:func:`fsanet_geo.geo.detect.pipeline.detect_to_file` (the methods of the same
:class:`~fsanet_geo.geo.detect.run.SceneRun`: journal, per-scene :class:`SeamMerger`, sink),
so the output equals a single-process run feature for feature, in the same order.
Memory on rank 0: one round of per-tile detections plus what the merger holds. Rank 0
merges while the others predict the next round.

Failures. Every process checks the settings and every scene before any pixel is read;
a failure anywhere stops all of them (:func:`fsanet_geo.distributed.agreed`). In the
rounds a rank's error travels with its results, and rank 0 announces the first error
(its own merge/write errors one round later) in the broadcast that ends each round, so
every process stops instead of waiting. A process that dies outright is caught by
torchrun, and every collective has a timeout (:data:`DETECT_TIMEOUT`).

Only rank 0 reports progress, writes the output and keeps the resume journal.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fsanet_geo.distributed import DistContext, agreed, error_line, init_distributed, raise_first
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.detect.pipeline import check_file_output, detect_scenes, detect_to_file
from fsanet_geo.geo.pixels.reader import gdal_env
from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary, SceneRun
from fsanet_geo.geo.settings import DetectSettings, Predictor

if TYPE_CHECKING:
    import geopandas

    from fsanet_geo.geo.seams.merge import SeamMerger

Unreadable = tuple[tuple[int, str], ...]
"""(tile, GDAL's reason) of the tiles of a block that could not be read (``skip_unreadable``)."""

DETECT_TIMEOUT = datetime.timedelta(minutes=30)
"""The longest a process waits for the others in one collective (a round, or the checks)."""


@dataclass(frozen=True)
class TileBlock:
    """Tiles ``[start, end)`` of scene ``scene`` (indexes into its tile list): one predictor batch."""

    scene: int
    start: int
    end: int


def plan_blocks(tile_counts: Sequence[int], starts: Sequence[int], block_tiles: int) -> list[TileBlock]:
    """Cut tiles ``[starts[s], tile_counts[s])`` of every scene ``s`` into blocks of ``block_tiles``.

    Blocks are in scene order, then tile order; the last block of a scene may be shorter.
    Block j is done by rank ``j % world_size``.
    """
    if block_tiles < 1:
        raise ValueError(f"block_tiles must be >= 1, got {block_tiles}")
    blocks = []
    for scene, (count, start) in enumerate(zip(tile_counts, starts, strict=True)):
        for first in range(start, count, block_tiles):
            blocks.append(TileBlock(scene, first, min(first + block_tiles, count)))
    return blocks


def round_share(n_blocks: int, round_index: int, rank: int, world_size: int, blocks_per_round: int) -> list[int]:
    """Indexes of the blocks ``rank`` does in round ``round_index`` (block j -> rank j % world_size)."""
    per_round = world_size * blocks_per_round
    first = round_index * per_round
    return [j for j in range(first, min(first + per_round, n_blocks)) if j % world_size == rank]


def init_detect_context(device: str = "auto", timeout: datetime.timedelta = DETECT_TIMEOUT) -> DistContext:
    """Join the torchrun group (gloo: detection only exchanges objects); device ``cuda:LOCAL_RANK`` or cpu."""
    return init_distributed(device, backend="gloo", timeout=timeout)


def detect_scenes_distributed(
    scenes: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    *,
    settings: DetectSettings | None = None,
    progress: Callable[[DetectProgress], None] | None = None,
    on_detections: Callable[[int, Detections], None] | None = None,
    context: DistContext | None = None,
    blocks_per_round: int = 1,
) -> geopandas.GeoDataFrame | None:
    """:func:`fsanet_geo.geo.detect.pipeline.detect_scenes` with the tiles spread over the torchrun processes.

    Every process calls it with the same arguments. Rank 0 returns the frame (equal to the
    single-process one, row for row) and is the only one calling ``progress`` and
    ``on_detections``; the others return None. ``context`` defaults to
    :func:`init_detect_context` (left again at the end); without torchrun this is
    :func:`detect_scenes`.
    """
    s = settings or DetectSettings()
    ctx = context or init_detect_context(s.device)
    try:
        if not ctx.distributed:
            return detect_scenes(scenes, predictor, settings=s, progress=progress, on_detections=on_detections)
        run = agreed(ctx, lambda: _prepare_on_rank(ctx, scenes, predictor, s, progress, on_detections))
        _run_distributed(run, ctx, blocks_per_round)
        return run.result_frame() if ctx.is_main else None
    finally:
        if context is None:
            ctx.close()


def detect_to_file_distributed(
    scenes: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    output: str | os.PathLike[str],
    *,
    settings: DetectSettings | None = None,
    progress: Callable[[DetectProgress], None] | None = None,
    keep_crs: bool = False,
    overwrite: bool = False,
    on_detections: Callable[[int, Detections], None] | None = None,
    context: DistContext | None = None,
    blocks_per_round: int = 1,
) -> DetectSummary | None:
    """:func:`fsanet_geo.geo.detect.pipeline.detect_to_file` with the tiles spread over the torchrun processes.

    Every process calls it with the same arguments; only rank 0 touches ``output`` and its
    journal (``settings.resume`` works as in one process) and returns the summary; the
    others return None. Errors on any process raise on all of them
    (:class:`DistributedError` on those that did not fail themselves).
    """
    s = settings or DetectSettings()
    ctx = context or init_detect_context(s.device)
    try:
        if not ctx.distributed:
            return detect_to_file(scenes, predictor, output, settings=s, progress=progress, keep_crs=keep_crs,
                                  overwrite=overwrite, on_detections=on_detections)
        out = Path(output)

        def prepare() -> SceneRun:
            if ctx.is_main:
                check_file_output(out, overwrite=overwrite)
            return _prepare_on_rank(ctx, scenes, predictor, s, progress, on_detections)

        run = agreed(ctx, prepare)
        with contextlib.ExitStack() as stack:
            if ctx.is_main:
                agreed(ctx, lambda: stack.enter_context(run.writing_to(out, keep_crs=keep_crs, overwrite=overwrite)))
            else:
                agreed(ctx, lambda: None)
            _run_distributed(run, ctx, blocks_per_round)
        if not ctx.is_main:
            return None
        return run.summary(out)
    finally:
        if context is None:
            ctx.close()


# -- the rounds -----------------------------------------------------------------------------


def _prepare_on_rank(
    ctx: DistContext,
    scenes: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    settings: DetectSettings,
    progress: Callable[[DetectProgress], None] | None,
    on_detections: Callable[[int, Detections], None] | None,
) -> SceneRun:
    """This process's checked run on its own device; callbacks only on rank 0."""
    main = ctx.is_main
    return SceneRun.prepare(scenes, predictor, settings, progress=progress if main else None,
                            on_detections=on_detections if main else None, device=ctx.device)


def _run_distributed(run: SceneRun, ctx: DistContext, blocks_per_round: int) -> None:
    """The lock-step rounds (module docstring); rank 0 merges and writes."""
    if blocks_per_round < 1:
        raise ValueError(f"blocks_per_round must be >= 1, got {blocks_per_round}")
    starts = ctx.broadcast(agreed(ctx, run.journal_starts) if ctx.is_main else agreed(ctx, lambda: None))
    plan = plan_blocks([len(sc.windows) for sc in run.scenes], starts, run.settings.batch_size)
    mine = [(j, plan[j]) for j in range(ctx.rank, len(plan), ctx.world_size)]
    per_round = ctx.world_size * blocks_per_round
    rounds = -(-len(plan) // per_round)
    feeder = _Feeder(run) if ctx.is_main else None
    pending: BaseException | None = None  # rank 0's own merge/write error, announced next
    results = _predict_blocks(run, mine)
    try:
        for r in range(rounds):
            count = len(round_share(len(plan), r, ctx.rank, ctx.world_size, blocks_per_round))
            own: BaseException | None = None
            try:
                payload: list[tuple[int, Detections, int, Unreadable]] | str = [next(results) for _ in range(count)]
            except Exception as exc:  # noqa: BLE001 - sent to rank 0, then raised everywhere
                own, payload = exc, error_line(exc)
            gathered = ctx.gather(payload)
            status = None
            if feeder is not None and gathered is not None:
                status = [p if isinstance(p, str) else None for p in gathered]
                if pending is not None and status[0] is None:
                    status[0] = error_line(pending)
            status = ctx.broadcast(status)
            raise_first(ctx, status, own or pending)
            if feeder is not None and gathered is not None:
                try:
                    for j, dets, skipped, bad in sorted(itertools.chain(*gathered), key=lambda item: item[0]):
                        feeder.take(plan[j], dets, skipped, bad)
                except Exception as exc:  # noqa: BLE001 - announced at the next broadcast
                    pending = exc
        if feeder is not None and pending is None:
            try:
                feeder.close()
            except Exception as exc:  # noqa: BLE001
                pending = exc
        final = ctx.broadcast([error_line(pending) if pending else None] + [None] * (ctx.world_size - 1))
        raise_first(ctx, final, pending)
    finally:
        results.close()  # type: ignore[attr-defined]


def _predict_blocks(
    run: SceneRun, mine: list[tuple[int, TileBlock]]
) -> Iterator[tuple[int, Detections, int, Unreadable]]:
    """(block index, its per-tile detections in scene pixels, skipped tiles, (tile, reason) of the
    unreadable ones) for this rank's blocks."""
    with gdal_env(run.settings.gdal_cache_mb * 2**20, remote=run.reads_remote):
        for scene, items in itertools.groupby(mine, key=lambda item: item[1].scene):
            blocks = list(items)
            indexes = [t for _, b in blocks for t in range(b.start, b.end)]
            with run.open_tiles(scene, indexes) as tiles:
                for j, b in blocks:
                    batch = [next(tiles) for _ in range(b.start, b.end)]
                    bad = tuple((t.index, t.unreadable) for t in batch if t.unreadable is not None)
                    yield j, run.predict(batch), sum(t.empty for t in batch), bad


class _Feeder:
    """Rank 0: takes blocks in block order; one scene's merger at a time, as one process does."""

    def __init__(self, run: SceneRun) -> None:
        self.run = run
        self.scene = -1
        self.merger: SeamMerger | None = None

    def take(self, block: TileBlock, dets: Detections, skipped: int, unreadable: Unreadable = ()) -> None:
        self._reach(block.scene)
        assert self.merger is not None
        self.run.take_tiles(block.scene, self.merger, block.start, block.end, skipped, dets, unreadable)

    def close(self) -> None:
        """Finish every scene (including those fully resumed from the journal); flush the rows."""
        self._reach(len(self.run.scenes))
        self.run.flush()
        self.run.record_unreadable()

    def _reach(self, scene: int) -> None:
        """Finish the scenes before ``scene`` and open ``scene`` (replaying its journal)."""
        while self.scene < scene:
            if self.merger is not None:
                self.run.finish_scene(self.scene, self.merger)
                self.merger = None
            self.scene += 1
            if self.scene < len(self.run.scenes):
                self.merger = self.run.new_merger(self.scene)
                self.run.replay_journal(self.scene, self.merger)
