"""One detection run over several scenes: its checked inputs, state, and steps.

:meth:`SceneRun.prepare` checks the settings and every scene before any pixel is read.
A scene then goes through the steps :meth:`~SceneRun.new_merger`,
:meth:`~SceneRun.replay_journal` (tiles a resumed run already holds), per batch
:meth:`~SceneRun.open_tiles` / :meth:`~SceneRun.predict` / :meth:`~SceneRun.take_tiles`,
and :meth:`~SceneRun.finish_scene`; :meth:`~SceneRun.flush` writes what is left.
:meth:`SceneRun.run_all` is the single-process loop; ``distributed_detect`` drives the
same steps with the tiles predicted on several processes. Pixels are scene pixels.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.fingerprint import run_fingerprint
from fsanet_geo.geo.outputs.journal import DetectJournal, JournalChunk
from fsanet_geo.geo.seams.merge import SeamMerger, merger_for
from fsanet_geo.geo.pixels.network_stats import network_bytes
from fsanet_geo.geo.outputs.output import DetectionOutput, Sink, file_output
from fsanet_geo.geo.detect.predict import TilePredictor, batches, class_filter
from fsanet_geo.geo.pixels.reader import TileData, TileReader, gdal_env, prefetch_tiles
from fsanet_geo.geo.pixels.scaling import ByteScaling
from fsanet_geo.geo.pixels.remote import is_remote
from fsanet_geo.geo.outputs.run_record import write_run_record
from fsanet_geo.geo.scene_crs import layer_crs
from fsanet_geo.geo.settings import DetectSettings, Predictor, predictor_config, resolve_tiling
from fsanet_geo.geo.pixels.stretch import ScaleChoice, choose_scaling
from fsanet_geo.geo.pixels.tiled_scene import TiledScene, open_tiled_scenes  # noqa: F401 - re-exported
from fsanet_geo.geo.pixels.unreadable import METADATA_KEY, UnreadableWindow, metadata_value
from fsanet_geo.geo.detect.tiling_checks import warn_about_tiling

if TYPE_CHECKING:
    import geopandas


@dataclass
class DetectProgress:
    """A progress event (after each batch and at the end of each scene).

    Tile counts are over all scenes of the run; ``tiles_done`` includes skipped tiles.
    ``detections`` counts final (merged) detections so far; ``class_counts`` by class name.
    """

    scene: str
    scene_index: int
    scenes: int
    tiles_done: int
    tiles_total: int
    tiles_skipped: int
    detections: int
    class_counts: dict[str, int]
    elapsed_s: float
    finished: bool = False
    bytes_fetched: int | None = None  # over the network since the run started; None: no remote scene, or unknown


@dataclass
class DetectSummary:
    """What a finished run did (the last progress event, plus the output)."""

    progress: DetectProgress
    output: Path | None = None
    resumed_tiles: int = 0
    unreadable: list[UnreadableWindow] = field(default_factory=list)
    """Tiles skipped because GDAL could not read them (``skip_unreadable``), in tile order."""


class SceneRun:
    """The state of one run over ``scenes``: progress counts, journal, output.

    Build it with :meth:`prepare`. ``progress`` sees a :class:`DetectProgress` after each
    batch; ``on_detections(scene_index, dets)`` each batch of final detections (scene pixels).
    """

    def __init__(
        self,
        settings: DetectSettings,
        predict: TilePredictor,
        tile_size: int,
        overlap: int,
        scenes: list[TiledScene],
        output: DetectionOutput,
        *,
        progress: Callable[[DetectProgress], None] | None = None,
        journal: DetectJournal | None = None,
        on_detections: Callable[[int, Detections], None] | None = None,
    ) -> None:
        self.settings = settings
        self.predict = predict
        self.tile_size = tile_size
        self.overlap = overlap
        self.scenes = scenes
        self.output = output
        self.progress = progress
        self.journal = journal
        self.on_detections = on_detections
        self.start = time.perf_counter()
        self.tiles_done = 0
        self.tiles_skipped = 0
        self.resumed_tiles = 0
        self.counts: dict[int, int] = {}
        self.unreadable: list[UnreadableWindow] = []
        self.imagery = getattr(predict.predictor, "imagery", None)
        self.stretches: dict[int, ScaleChoice] = {}
        self._bytes_at_start = network_bytes() if self.reads_remote else None

    @classmethod
    def prepare(
        cls,
        scene_paths: Sequence[str | os.PathLike[str]],
        predictor: Predictor,
        settings: DetectSettings,
        *,
        progress: Callable[[DetectProgress], None] | None = None,
        sink: Sink | None = None,
        journal: DetectJournal | None = None,
        on_detections: Callable[[int, Detections], None] | None = None,
        device: torch.device | None = None,
        warn: bool = True,
    ) -> SceneRun:
        """Validate settings and every scene before any pixel is read.

        ``device`` (e.g. ``cuda:LOCAL_RANK`` under torchrun) overrides ``settings.device``.
        ``warn``: warn about scenes without CRS (off for checks that precede a run).
        """
        settings.validate()
        if not scene_paths:
            raise ConfigError("no scenes given")
        device = device if device is not None else resolve_device(settings.device)
        if settings.half and device.type != "cuda":
            raise ConfigError("--half (fp16) needs a CUDA device; it is not supported on CPU")
        tile, overlap = resolve_tiling(settings, predictor)
        if warn:
            warn_about_tiling(settings, predictor, tile, overlap)
        in_channels = predictor_config(predictor, "in_channels")
        class_names = [str(c) for c in (getattr(predictor, "class_names", None) or [])]
        keep = class_filter(settings.classes, class_names)
        imagery = getattr(predictor, "imagery", None)
        scenes = open_tiled_scenes(scene_paths, settings, tile, overlap, in_channels, warn=warn,
                                   model_gsd=getattr(imagery, "gsd", None), model_bands=getattr(imagery, "bands", None))
        if not scenes:
            raise RasterError(f"the area of interest {settings.aoi} misses every scene")
        predict = TilePredictor(predictor, device, settings, keep)
        output = DetectionOutput(scenes, class_names, sink, settings.sink_rows)
        output.crs = layer_crs([s.crs for s in scenes], settings.crs, crs_bound=False)
        return cls(settings, predict, tile, overlap, scenes, output, progress=progress, journal=journal,
                   on_detections=on_detections)

    # -- progress ----------------------------------------------------------------------------

    @property
    def tiles_total(self) -> int:
        return sum(len(s.windows) for s in self.scenes)

    def event(self, scene_index: int, finished: bool = False) -> DetectProgress:
        """The progress so far, on scene ``scene_index``."""
        return DetectProgress(
            scene=self.scenes[scene_index].name,
            scene_index=scene_index,
            scenes=len(self.scenes),
            tiles_done=self.tiles_done,
            tiles_total=self.tiles_total,
            tiles_skipped=self.tiles_skipped,
            detections=sum(self.counts.values()),
            class_counts={self.output.class_name(k): v for k, v in sorted(self.counts.items())},
            elapsed_s=time.perf_counter() - self.start,
            finished=finished,
            bytes_fetched=self._bytes_fetched(),
        )

    def _bytes_fetched(self) -> int | None:
        now = network_bytes() if self._bytes_at_start is not None else None
        return now - self._bytes_at_start if now is not None and self._bytes_at_start is not None else None

    def summary(self, output: Path | None = None) -> DetectSummary:
        """The finished run: its last progress event, ``output`` and the tiles taken from the journal."""
        return DetectSummary(self.event(len(self.scenes) - 1, finished=True), output, self.resumed_tiles,
                             list(self.unreadable))

    def report(self, scene_index: int, finished: bool = False) -> None:
        if self.progress is not None:
            self.progress(self.event(scene_index, finished))

    # -- the loop ----------------------------------------------------------------------------

    def run_all(self) -> None:
        """Every scene in turn, under a bounded GDAL block cache; then flush the last rows."""
        with gdal_env(self.settings.gdal_cache_mb * 2**20, remote=self.reads_remote):
            if self.scenes and self.journal_starts()[0] == 0:  # the total before the first tile (a
                self.report(0)  # journal replay of scene 0 reports it itself)
            for i in range(len(self.scenes)):
                self._run_scene(i)
        self.flush()
        self.record_unreadable()

    @property
    def reads_remote(self) -> bool:
        """Whether a scene of the run is read over the network (see :mod:`~fsanet_geo.geo.pixels.remote`)."""
        return any(is_remote(s.info.path) for s in self.scenes)

    def _run_scene(self, index: int) -> None:
        windows = self.scenes[index].windows
        merger = self.new_merger(index)
        start = self.replay_journal(index, merger)
        if start < len(windows):
            with self.open_tiles(index, range(start, len(windows))) as tiles:
                for group in batches(tiles, self.settings.batch_size):
                    dets = self.predict(group)
                    skipped = sum(t.empty for t in group)
                    bad = tuple((t.index, t.unreadable) for t in group if t.unreadable is not None)
                    self.take_tiles(index, merger, group[0].index, group[-1].index + 1, skipped, dets, bad)
        self.finish_scene(index, merger)

    # -- the steps of one scene ----------------------------------------------------------------

    def new_merger(self, index: int) -> SeamMerger:
        """A fresh :class:`SeamMerger` for scene ``index`` with the run's merge settings."""
        info = self.scenes[index].info
        return merger_for(self.scenes[index].windows, info.height, info.width, self.settings)

    def journal_starts(self) -> list[int]:
        """Per scene, the first tile the journal does not hold (all 0 without a journal)."""
        return [self.journal.done_until(i) if self.journal is not None else 0 for i in range(len(self.scenes))]

    def replay_journal(self, index: int, merger: SeamMerger) -> int:
        """Feed the journal's finished tiles of scene ``index`` to ``merger``; return the first tile to do."""
        start = 0
        if self.journal is not None:
            for chunk in self.journal.chunks(index):
                self._merge(index, merger, range(chunk.start, chunk.end), chunk.detections)
                self.tiles_done += chunk.end - chunk.start
                self.tiles_skipped += chunk.skipped
                self.resumed_tiles += chunk.end - chunk.start
                self._note_unreadable(index, chunk.unreadable)
                start = chunk.end
            if start:
                self.report(index)
        return start

    @contextlib.contextmanager
    def open_tiles(self, index: int, indexes: Sequence[int]) -> Iterator[Iterator[TileData]]:
        """Tiles ``indexes`` of scene ``index``, read and scaled ahead in background threads, in order."""
        s, scene = self.settings, self.scenes[index]
        depth = s.prefetch or 2 * s.batch_size
        zoom = scene.gsd.zoom if scene.gsd is not None else 1.0
        with TileReader(scene.info, self.scaling(index), self.tile_size, zoom,
                        skip_unreadable=s.skip_unreadable, retry_seconds=s.retry_seconds) as reader:
            tiles = prefetch_tiles(reader, scene.windows, indexes, threads=s.read_threads, depth=depth)
            try:
                yield tiles
            finally:
                tiles.close()  # type: ignore[attr-defined]

    def scaling(self, index: int) -> ByteScaling | None:
        """The 8-bit scaling of scene ``index``: the user's ``scale``, else its stretch (measured
        once, reported once as a :class:`~fsanet_geo.errors.Notice`; see :mod:`~fsanet_geo.geo.pixels.stretch`)."""
        if index not in self.stretches:
            self.stretches[index] = choose_scaling(self.scenes[index].info, self.settings, self.imagery)
        return self.stretches[index].scaling

    def take_tiles(
        self, index: int, merger: SeamMerger, first: int, last: int, skipped: int, dets: Detections,
        unreadable: tuple[tuple[int, str], ...] = (),
    ) -> None:
        """Tiles ``[first, last)`` of scene ``index`` are done (``skipped`` of them empty, of which
        ``unreadable`` (tile, GDAL's reason) could not be read; ``dets`` in scene pixels): journal,
        merge, emit the final detections, report."""
        if self.journal is not None:
            self.journal.record(JournalChunk(index, first, last, skipped, dets, unreadable))
        self._note_unreadable(index, unreadable)
        self._merge(index, merger, range(first, last), dets)
        self.tiles_done += last - first
        self.tiles_skipped += skipped
        self.report(index)

    def finish_scene(self, index: int, merger: SeamMerger) -> None:
        """Every tile of scene ``index`` is in: emit what the merger still holds, report the scene done."""
        self._emit(index, merger.finish())
        self.report(index, finished=True)

    def _note_unreadable(self, index: int, tiles: tuple[tuple[int, str], ...]) -> None:
        scene = self.scenes[index]
        self.unreadable += [UnreadableWindow(scene.name, t, tuple(scene.windows[t]), reason)  # type: ignore[arg-type]
                            for t, reason in tiles]

    def record_unreadable(self) -> None:
        """Put the skipped unreadable windows in the output's layer metadata (a sink that keeps it)."""
        if self.unreadable and hasattr(self.output.sink, "layer_metadata"):
            self.output.sink.layer_metadata[METADATA_KEY] = metadata_value(self.unreadable)  # type: ignore[union-attr]

    def flush(self) -> None:
        """Write (or collect) the final detections still buffered."""
        self.output.flush()

    def result_frame(self) -> geopandas.GeoDataFrame:
        """The collected detections of a run without a sink, as one GeoDataFrame."""
        return self.output.frame()

    def _merge(self, index: int, merger: SeamMerger, tiles: range, dets: Detections) -> None:
        for t in tiles:
            self._emit(index, merger.add(t, dets.select(dets.tile == t)))

    def _emit(self, index: int, dets: Detections) -> None:
        area = self.scenes[index].area
        if area is not None:
            dets = area.keep_inside(dets)
        if len(dets) == 0:
            return
        labels, counts = np.unique(dets.labels, return_counts=True)
        for label, n in zip(labels.tolist(), counts.tolist()):
            self.counts[label] = self.counts.get(label, 0) + n
        if self.on_detections is not None:
            self.on_detections(index, dets)
        self.output.add(index, dets)

    # -- file output -------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing_to(self, out: Path, *, keep_crs: bool, overwrite: bool) -> Iterator[None]:
        """Give the run its resume journal and a sink writing ``out`` (see :func:`file_output`);
        once ``out`` is in place, its run record ``out.run.json`` when a scene was stretched or
        resampled (see :mod:`~fsanet_geo.geo.outputs.run_record`)."""
        crs_bound = out.suffix.lower() not in (".geojson", ".json") or keep_crs  # WGS84 / pixels whatever the scenes
        crs = layer_crs([s.crs for s in self.scenes], self.settings.crs, output=out.name, crs_bound=crs_bound)
        with file_output(out, crs, self.fingerprint(), resume=self.settings.resume,
                         keep_crs=keep_crs, overwrite=overwrite) as (journal, sink):
            self.journal, self.output.sink = journal, sink
            yield
        write_run_record(out, self)

    def fingerprint(self) -> dict[str, Any]:
        """What a journal must match to be resumed: scenes, settings, tiling and model
        (see :mod:`~fsanet_geo.geo.outputs.fingerprint`)."""
        return run_fingerprint(self.settings, self.predict.predictor, [sc.info.path for sc in self.scenes],
                               self.tile_size, self.overlap)
