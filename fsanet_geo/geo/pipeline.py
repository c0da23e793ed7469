"""Streamed, tiled detection over whole scenes: read -> predict -> merge -> georeference.

Background threads read and scale tiles ahead (bounded queue); tiles go to the predictor
in batches; boxes are moved to scene pixels and handed to a :class:`SeamMerger`, which
returns detections as soon as no later tile can change them; those are georeferenced
and written to the sink (or collected). Memory is bounded by the prefetch queue, GDAL's
capped block cache and the merger's waiting detections, not by scene size.

The library never prints: progress goes to a callback as :class:`DetectProgress`.

The steps of a run are public so that ``distributed_detect`` drives the same code on
several ranks: :func:`prepare_run` -> per scene :func:`new_merger`, :func:`replay_journal`,
:func:`open_tiles` / :func:`take_tiles`, :func:`predict_tiles`, :func:`finish_scene` ->
:func:`flush_output` -> :func:`result_frame`, all sharing one :class:`SceneRun`.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from affine import Affine

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import ConfigError, NotGeoreferencedWarning, RasterError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.journal import DetectJournal, JournalChunk, journal_dir
from fsanet_geo.geo.reader import SceneInfo, TileData, TileReader, gdal_env, open_scene, prefetch_tiles, scene_scaling
from fsanet_geo.geo.tiling import tile_windows
from fsanet_geo.geo.windows import TileWindow

if TYPE_CHECKING:
    import geopandas

    from fsanet_geo.geo.merge import SeamMerger

DEFAULT_TILE_SIZE = 800
DEFAULT_OVERLAP = 64
"""Pixels; AI-TOD objects are under 64 px, so each lies wholly inside some tile."""

Predictor = Callable[[torch.Tensor], list[dict[str, torch.Tensor]]]


class Sink(Protocol):
    """Where final detections go (see :func:`fsanet_geo.geo.export.open_sink`)."""

    def write(self, gdf: geopandas.GeoDataFrame) -> None: ...


@dataclass
class DetectSettings:
    """Every option of a detection run. Pixel values are scene/tile pixels.

    Attributes:
        tile_size: tile side; None -> the predictor's ``config.input_size``, else 800.
        overlap: pixels shared by neighbouring tiles; None -> min(64, tile_size // 4).
            Objects up to this size are seen whole in at least one tile.
        batch_size: tiles per predictor call.
        bands: 1-based band indexes (GDAL order, ``[3, 2, 1]``); None -> default choice.
        scale: user range (min, max) mapped to 0..255 for every band; None -> percentiles.
        percentiles: (low, high) per-band percentiles for non-uint8 scenes.
        score_thr: drop detections scoring below this (on top of the predictor's own).
        nms_iou: cross-tile merge threshold. merge_metric: "ios" or "iou".
        merge_method: "hard", or soft-NMS "linear" / "gaussian". soft_nms_sigma: Gaussian width.
        classes: keep only these class names; None -> all.
        device: "auto", "cpu", "cuda", "cuda:N": where tiles (and a torch module predictor) go.
        half: fp16 autocast (CUDA only).
        nodata_max_fraction: drop detections whose box is more than this fraction nodata.
        allow_no_crs: run on scenes without a CRS (outputs in pixel coordinates).
        read_threads: background reading threads. prefetch: tiles read ahead (None -> 2 * batch_size).
        gdal_cache_mb: GDAL block cache bound, MiB.
        resume: continue from a journal left by an interrupted run (file outputs only).
        sink_rows: final detections buffered before each sink write.
    """

    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    bands: list[int] | None = None
    scale: tuple[float, float] | None = None
    percentiles: tuple[float, float] = (2.0, 98.0)
    score_thr: float = 0.0
    nms_iou: float = 0.5
    merge_metric: str = "ios"
    merge_method: str = "hard"
    soft_nms_sigma: float = 0.5
    classes: list[str] | None = None
    device: str = "auto"
    half: bool = False
    nodata_max_fraction: float = 0.5
    allow_no_crs: bool = False
    read_threads: int = 2
    prefetch: int | None = None
    gdal_cache_mb: int = 64
    resume: bool = False
    sink_rows: int = 10_000

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an out-of-range option (before any work)."""
        if self.tile_size is not None and self.tile_size < 16:
            raise ConfigError(f"tile size must be >= 16 pixels, got {self.tile_size}")
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"overlap must be >= 0 pixels, got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.score_thr <= 1.0:
            raise ConfigError(f"score threshold must be in 0..1, got {self.score_thr}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ConfigError(f"merge IoU threshold must be in (0, 1], got {self.nms_iou}")
        if self.merge_metric not in ("ios", "iou"):
            raise ConfigError(f"merge metric must be 'ios' or 'iou', got {self.merge_metric!r}")
        if self.merge_method not in ("hard", "linear", "gaussian"):
            raise ConfigError(f"merge method must be hard, linear or gaussian, got {self.merge_method!r}")
        if not 0.0 <= self.nodata_max_fraction <= 1.0:
            raise ConfigError(f"nodata_max_fraction must be in 0..1, got {self.nodata_max_fraction}")
        if self.read_threads < 1 or (self.prefetch is not None and self.prefetch < 1):
            raise ConfigError("read_threads and prefetch must be >= 1")
        if self.gdal_cache_mb < 1:
            raise ConfigError(f"GDAL cache must be >= 1 MiB, got {self.gdal_cache_mb}")
        if self.scale is not None:
            if len(self.scale) != 2:
                raise ConfigError(f"scale range is two values MIN,MAX, got {list(self.scale)}")
            low, high = (float(v) for v in self.scale)
            if not (np.isfinite(low) and np.isfinite(high) and high > low):
                raise ConfigError(f"scale range needs MAX > MIN (both finite), got {low:g},{high:g}")
        pct = [float(v) for v in self.percentiles]
        if len(pct) != 2 or not 0.0 <= pct[0] < pct[1] <= 100.0:
            raise ConfigError(f"percentiles must be two values with 0 <= low < high <= 100, got {pct}")


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


@dataclass
class DetectSummary:
    """What a finished run did (the last progress event, plus the output)."""

    progress: DetectProgress
    output: Path | None = None
    resumed_tiles: int = 0


@dataclass
class _Scene:
    info: SceneInfo
    windows: list[TileWindow]
    transform: Affine
    name: str


@dataclass
class SceneRun:
    """Mutable state shared by the scenes of one run."""

    settings: DetectSettings
    predictor: Predictor
    device: torch.device
    tile_size: int
    overlap: int
    class_names: list[str]
    keep_labels: np.ndarray | None
    scenes: list[_Scene]
    progress: Callable[[DetectProgress], None] | None
    sink: Sink | None
    journal: DetectJournal | None
    on_detections: Callable[[int, Detections], None] | None
    start: float = field(default_factory=time.perf_counter)
    tiles_done: int = 0
    tiles_skipped: int = 0
    resumed_tiles: int = 0
    counts: dict[int, int] = field(default_factory=dict)
    collected: list[geopandas.GeoDataFrame] = field(default_factory=list)
    buffer: list[tuple[int, Detections]] = field(default_factory=list)
    buffered: int = 0

    @property
    def tiles_total(self) -> int:
        return sum(len(s.windows) for s in self.scenes)

    def event(self, scene_index: int, finished: bool = False) -> DetectProgress:
        return DetectProgress(
            scene=self.scenes[scene_index].name,
            scene_index=scene_index,
            scenes=len(self.scenes),
            tiles_done=self.tiles_done,
            tiles_total=self.tiles_total,
            tiles_skipped=self.tiles_skipped,
            detections=sum(self.counts.values()),
            class_counts={self.name_of(k): v for k, v in sorted(self.counts.items())},
            elapsed_s=time.perf_counter() - self.start,
            finished=finished,
        )

    def report(self, scene_index: int, finished: bool = False) -> None:
        if self.progress is not None:
            self.progress(self.event(scene_index, finished))

    def name_of(self, label: int) -> str:
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class_{label}"


# -- public API ----------------------------------------------------------------------------


def detect_scene(
    scene: str | os.PathLike[str],
    predictor: Predictor,
    *,
    tile_size: int | None = None,
    overlap: int | None = None,
    batch_size: int | None = None,
    bands: Sequence[int] | None = None,
    settings: DetectSettings | None = None,
    progress: Callable[[DetectProgress], None] | None = None,
    sink: Sink | None = None,
) -> geopandas.GeoDataFrame:
    """Detect objects over a whole scene, tile by tile.

    Args:
        scene: a raster file (GeoTIFF, COG, VRT, ...).
        predictor: callable ``uint8 Tensor[B, C, T, T] -> list[dict]`` with ``boxes``
            (Tensor[N, 4] xyxy tile pixels), ``scores`` (Tensor[N]), ``labels`` (Tensor[N],
            0-based); class names from its ``class_names`` attribute when present.
        tile_size, overlap, batch_size, bands: shortcuts overriding ``settings``.
        settings: every other option (:class:`DetectSettings`).
        progress: called with a :class:`DetectProgress` after each batch.
        sink: when given, final detections are written to it as they finalise (memory
            does not grow with the number of objects) and the returned frame has no rows.

    Returns:
        GeoDataFrame in the raster's CRS, one row per object: class_id, class_name, score,
        x_min, y_min, x_max, y_max (scene pixel edges), scene (file name), geometry.

    Raises:
        RasterError: unusable scene (not a raster, bad bands, no CRS without allow_no_crs).
        ConfigError: bad settings.
    """
    s = _with_overrides(settings, tile_size=tile_size, overlap=overlap, batch_size=batch_size, bands=bands)
    return detect_scenes([Path(scene)], predictor, settings=s, progress=progress, sink=sink)


def detect_scenes(
    scenes: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    *,
    settings: DetectSettings | None = None,
    sink: Sink | None = None,
    progress: Callable[[DetectProgress], None] | None = None,
    journal: DetectJournal | None = None,
    on_detections: Callable[[int, Detections], None] | None = None,
) -> geopandas.GeoDataFrame:
    """Detect over several scenes into one layer (the ``scene`` column names the file).

    All scenes are opened and checked before any tile is read; they must share one CRS.
    ``journal`` (see :mod:`fsanet_geo.geo.journal`) records finished tiles for resuming;
    ``on_detections(scene_index, dets)`` sees each batch of final detections (scene
    pixels), e.g. for a preview. Otherwise as :func:`detect_scene`.
    """
    run = prepare_run(scenes, predictor, settings or DetectSettings(), progress, sink, journal, on_detections)
    _run_all(run)
    return result_frame(run)


def check_scenes(
    scenes: Sequence[str | os.PathLike[str]], predictor: Predictor, settings: DetectSettings | None = None
) -> None:
    """Run every check :func:`detect_scenes` makes before reading pixels (settings, scenes, CRS).

    Raises the same :class:`RasterError` / :class:`ConfigError` / :class:`DeviceError`. It does
    not warn (about a scene without CRS accepted by ``allow_no_crs``): the run itself does, once.
    """
    prepare_run(scenes, predictor, settings or DetectSettings(), None, None, None, None, warn=False)


def detect_to_file(
    scenes: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    output: str | os.PathLike[str],
    *,
    settings: DetectSettings | None = None,
    progress: Callable[[DetectProgress], None] | None = None,
    keep_crs: bool = False,
    overwrite: bool = False,
    on_detections: Callable[[int, Detections], None] | None = None,
) -> DetectSummary:
    """Detect over ``scenes`` and stream the result into one vector file ``output``.

    The format follows the extension (see :func:`fsanet_geo.geo.export.open_sink`). The
    output path (format, exists without ``overwrite``, folder missing), the settings and the
    scenes are checked before anything is written; the file appears atomically at the end.
    A journal ``<output>.partial/`` records finished tiles so that ``settings.resume``
    continues an interrupted run; it is removed on success (and on a failure before any
    tile was finished).
    """
    from fsanet_geo.geo.export import output_format
    from fsanet_geo.io_utils import check_output_path

    s = settings or DetectSettings()
    output_format(output)
    out = check_output_path(output, overwrite=overwrite)
    run = prepare_run(scenes, predictor, s, progress, None, None, on_detections)
    with file_output(run, out, keep_crs=keep_crs, overwrite=overwrite):
        _run_all(run)
    return DetectSummary(run.event(len(run.scenes) - 1, finished=True), out, run.resumed_tiles)


@contextlib.contextmanager
def file_output(run: SceneRun, out: Path, *, keep_crs: bool, overwrite: bool) -> Iterator[None]:
    """Give ``run`` its resume journal and a sink writing ``out``; the file appears on a clean exit.

    The sink is opened first (it checks the format, the folder and existing outputs), so a
    refused output leaves no journal behind. On an exception the output is not written and
    the journal is kept for ``resume``, unless this run created it and finished no tile.
    """
    from fsanet_geo.geo.export import open_sink

    if run.settings.resume:
        _remove_stale_temporaries(out)
    with open_sink(out, crs=run.scenes[0].info.crs, keep_crs=keep_crs, overwrite=overwrite) as sink:
        journal = DetectJournal(journal_dir(out), _fingerprint(run), resume=run.settings.resume)
        run.journal, run.sink = journal, sink
        try:
            yield
        except BaseException:
            if journal.created and journal.is_empty():
                journal.remove()
            raise
    journal.remove()


def _remove_stale_temporaries(out: Path) -> None:
    """Remove the temporary output folders a killed run left beside ``out`` (``.<name>.*.tmp``)."""
    import shutil

    for stale in out.parent.glob(f".{out.name}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


# -- preparation -----------------------------------------------------------------------------


def _with_overrides(settings: DetectSettings | None, **overrides: Any) -> DetectSettings:
    s = DetectSettings(**asdict(settings)) if settings is not None else DetectSettings()
    for key, value in overrides.items():
        if value is not None:
            setattr(s, key, list(value) if key == "bands" else value)
    return s


def _predictor_config(predictor: Predictor, name: str) -> Any:
    config = getattr(predictor, "config", None)
    return getattr(config, name, None) if config is not None else None


def resolve_tiling(settings: DetectSettings, predictor: Predictor) -> tuple[int, int]:
    """(tile_size, overlap) in pixels from the settings, else the predictor's config, else defaults."""
    tile = settings.tile_size
    if tile is None:
        size = _predictor_config(predictor, "input_size")
        if isinstance(size, (tuple, list)):
            size = max(size)
        tile = int(size) if size else DEFAULT_TILE_SIZE
    overlap = settings.overlap if settings.overlap is not None else min(DEFAULT_OVERLAP, tile // 4)
    if overlap >= tile:
        raise ConfigError(f"overlap ({overlap}) must be smaller than the tile size ({tile})")
    return tile, overlap


def prepare_run(
    scene_paths: Sequence[str | os.PathLike[str]],
    predictor: Predictor,
    settings: DetectSettings,
    progress: Callable[[DetectProgress], None] | None,
    sink: Sink | None,
    journal: DetectJournal | None,
    on_detections: Callable[[int, Detections], None] | None,
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
    in_channels = _predictor_config(predictor, "in_channels")
    class_names = [str(c) for c in (getattr(predictor, "class_names", None) or [])]
    keep = None
    if settings.classes:
        unknown = [c for c in settings.classes if c not in class_names]
        if unknown:
            known = ", ".join(class_names) if class_names else "none (the predictor has no class_names)"
            raise ConfigError(f"unknown class name(s) {unknown}; known: {known}")
        keep = np.array(sorted(class_names.index(c) for c in settings.classes), np.int64)
    scenes = []
    for p in scene_paths:
        info = open_scene(p, bands=settings.bands, in_channels=in_channels)
        transform = info.transform
        if info.crs is None:
            if not settings.allow_no_crs:
                raise RasterError(f"{info.path} has no CRS: outputs would not be georeferenced (use --allow-no-crs)")
            if warn:
                warnings.warn(
                    f"{info.path} has no CRS: detections are in pixel coordinates",
                    NotGeoreferencedWarning,
                    stacklevel=3,
                )
            transform = Affine.identity()
        scenes.append(_Scene(info, tile_windows(info.height, info.width, tile, overlap), transform, info.path.name))
    crs_set = {s.info.crs.to_wkt() if s.info.crs else None for s in scenes}
    if len(crs_set) > 1:
        raise RasterError("the scenes have different CRSs: write one output per scene (--output-dir)")
    if isinstance(predictor, torch.nn.Module):
        predictor.eval()
        param = next(predictor.parameters(), None)
        if param is not None and param.device != device:
            predictor.to(device)
    return SceneRun(
        settings, predictor, device, tile, overlap, class_names, keep, scenes, progress, sink, journal, on_detections
    )


def _fingerprint(run: SceneRun) -> dict[str, Any]:
    s = asdict(run.settings)
    for key in ("device", "half", "read_threads", "prefetch", "gdal_cache_mb", "resume", "sink_rows", "batch_size"):
        s.pop(key)
    scenes = []
    for sc in run.scenes:
        st = sc.info.path.stat()
        scenes.append({"path": str(sc.info.path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return {
        "version": 1,
        "scenes": scenes,
        "settings": s,
        "tile_size": run.tile_size,
        "overlap": run.overlap,
        "class_names": run.class_names,
    }


# -- the loop -------------------------------------------------------------------------------


def _run_all(run: SceneRun) -> None:
    """Every scene in turn, under a bounded GDAL block cache; then flush the last rows."""
    with gdal_env(run.settings.gdal_cache_mb * 2**20):
        for i in range(len(run.scenes)):
            _run_scene(run, i)
    flush_output(run)


def _run_scene(run: SceneRun, index: int) -> None:
    s, scene = run.settings, run.scenes[index]
    merger = new_merger(run, index)
    start = replay_journal(run, index, merger)
    if start < len(scene.windows):
        with open_tiles(run, index, range(start, len(scene.windows))) as tiles:
            for group in _groups(tiles, s.batch_size):
                dets = predict_tiles(run, group)
                take_tiles(run, index, merger, group[0].index, group[-1].index + 1, sum(t.empty for t in group), dets)
    finish_scene(run, index, merger)


# Steps of one scene, shared with the distributed loop (fsanet_geo.geo.distributed_detect).


def new_merger(run: SceneRun, index: int) -> SeamMerger:
    """A fresh :class:`SeamMerger` for scene ``index`` with the run's merge settings."""
    from fsanet_geo.geo.merge import SeamMerger

    s, info = run.settings, run.scenes[index].info
    return SeamMerger(
        run.scenes[index].windows,
        info.height,
        info.width,
        iou_threshold=s.nms_iou,
        metric=s.merge_metric,  # type: ignore[arg-type]
        method=s.merge_method,  # type: ignore[arg-type]
        sigma=s.soft_nms_sigma,
        class_aware=True,
    )


def replay_journal(run: SceneRun, index: int, merger: SeamMerger) -> int:
    """Feed the journal's finished tiles of scene ``index`` to ``merger``; return the first tile to do."""
    start = 0
    if run.journal is not None:
        for chunk in run.journal.chunks(index):
            _add_to_merger(run, index, merger, range(chunk.start, chunk.end), chunk.detections)
            run.tiles_done += chunk.end - chunk.start
            run.tiles_skipped += chunk.skipped
            run.resumed_tiles += chunk.end - chunk.start
            start = chunk.end
        if start:
            run.report(index)
    return start


@contextlib.contextmanager
def open_tiles(run: SceneRun, index: int, indexes: Sequence[int]) -> Iterator[Iterator[TileData]]:
    """Tiles ``indexes`` of scene ``index``, read and scaled ahead in background threads, in order."""
    s, info = run.settings, run.scenes[index].info
    scaling = scene_scaling(info, value_range=s.scale, percentiles=s.percentiles)
    depth = s.prefetch or 2 * s.batch_size
    with TileReader(info, scaling, run.tile_size) as reader:
        tiles = prefetch_tiles(reader, run.scenes[index].windows, indexes, threads=s.read_threads, depth=depth)
        try:
            yield tiles
        finally:
            tiles.close()  # type: ignore[attr-defined]


def take_tiles(
    run: SceneRun, index: int, merger: SeamMerger, first: int, last: int, skipped: int, dets: Detections
) -> None:
    """Tiles ``[first, last)`` of scene ``index`` are done: journal, merge, emit, report."""
    if run.journal is not None:
        run.journal.record(JournalChunk(index, first, last, skipped, dets))
    _add_to_merger(run, index, merger, range(first, last), dets)
    run.tiles_done += last - first
    run.tiles_skipped += skipped
    run.report(index)


def finish_scene(run: SceneRun, index: int, merger: SeamMerger) -> None:
    """Every tile of scene ``index`` is in: emit what the merger still holds, report the scene done."""
    _emit(run, index, merger.finish())
    run.report(index, finished=True)


def _groups(tiles: Iterator[TileData], batch_size: int) -> Iterator[list[TileData]]:
    """Consecutive tiles holding ``batch_size`` non-empty ones (empty tiles ride along)."""
    group: list[TileData] = []
    full = 0
    for tile in tiles:
        group.append(tile)
        full += not tile.empty
        if full == batch_size:
            yield group
            group, full = [], 0
    if group:
        yield group


def _add_to_merger(run: SceneRun, index: int, merger: SeamMerger, tiles: range, dets: Detections) -> None:
    for t in tiles:
        final = merger.add(t, dets.select(dets.tile == t))
        _emit(run, index, final)


def predict_tiles(run: SceneRun, group: Sequence[TileData]) -> Detections:
    """Run the predictor on the non-empty tiles of ``group``; detections in scene pixels."""
    full = [t for t in group if not t.empty]
    if not full:
        return Detections()
    batch = torch.from_numpy(np.stack([t.image for t in full]))
    if run.device.type == "cuda":
        batch = batch.pin_memory().to(run.device, non_blocking=True)
    autocast = (
        torch.autocast(device_type="cuda", dtype=torch.float16) if run.settings.half else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        outputs = run.predictor(batch)
    if len(outputs) != len(full):
        raise ValueError(f"the predictor returned {len(outputs)} results for a batch of {len(full)} tiles")
    return Detections.concat([_tile_detections(run, t, out) for t, out in zip(full, outputs)])


def _tile_detections(run: SceneRun, tile: TileData, out: dict[str, torch.Tensor]) -> Detections:
    """Filter one tile's raw output and move it to scene pixels (float64 [N, 4] xyxy)."""
    s = run.settings
    boxes = out["boxes"].detach().to("cpu", torch.float64).numpy().reshape(-1, 4)
    scores = out["scores"].detach().to("cpu", torch.float32).numpy().reshape(-1)
    labels = out["labels"].detach().to("cpu", torch.int64).numpy().reshape(-1)
    keep = scores >= s.score_thr
    if run.keep_labels is not None:
        keep &= np.isin(labels, run.keep_labels)
    w = tile.window
    boxes = boxes.copy()
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0.0, w.width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0.0, w.height)
    keep &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    if tile.valid is not None and s.nodata_max_fraction < 1.0 and keep.any():
        keep &= _nodata_fraction(tile.valid, boxes) <= s.nodata_max_fraction
    boxes = boxes[keep] + np.array([w.col_off, w.row_off, w.col_off, w.row_off], np.float64)
    return Detections(boxes, scores[keep], labels[keep], np.full(int(keep.sum()), tile.index, np.int64))


def _nodata_fraction(valid: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of the pixels under each box (tile pixels, [N, 4]) that hold no data."""
    invalid = np.zeros((valid.shape[0] + 1, valid.shape[1] + 1), np.int64)
    invalid[1:, 1:] = np.cumsum(np.cumsum(~valid, axis=0, dtype=np.int64), axis=1)
    x0 = np.floor(boxes[:, 0]).astype(np.int64)
    y0 = np.floor(boxes[:, 1]).astype(np.int64)
    x1 = np.maximum(np.ceil(boxes[:, 2]).astype(np.int64), x0 + 1)
    y1 = np.maximum(np.ceil(boxes[:, 3]).astype(np.int64), y0 + 1)
    x1 = np.minimum(x1, valid.shape[1])
    y1 = np.minimum(y1, valid.shape[0])
    count = invalid[y1, x1] - invalid[y0, x1] - invalid[y1, x0] + invalid[y0, x0]
    area = (x1 - x0) * (y1 - y0)
    return count / np.maximum(area, 1)


# -- output ---------------------------------------------------------------------------------


def _emit(run: SceneRun, index: int, dets: Detections) -> None:
    if len(dets) == 0:
        return
    labels, counts = np.unique(dets.labels, return_counts=True)
    for label, n in zip(labels.tolist(), counts.tolist()):
        run.counts[label] = run.counts.get(label, 0) + n
    if run.on_detections is not None:
        run.on_detections(index, dets)
    run.buffer.append((index, dets))
    run.buffered += len(dets)
    if run.sink is not None and run.buffered >= run.settings.sink_rows:
        flush_output(run)


def flush_output(run: SceneRun) -> None:
    """Georeference the buffered detections; write them to the sink, or keep them."""
    if not run.buffer:
        return
    by_scene: dict[int, list[Detections]] = {}
    for index, dets in run.buffer:
        by_scene.setdefault(index, []).append(dets)
    run.buffer, run.buffered = [], 0
    for index, parts in by_scene.items():
        gdf = _to_frame(run, index, Detections.concat(parts))
        if run.sink is not None:
            run.sink.write(gdf)
        else:
            run.collected.append(gdf)


def _class_names_for(run: SceneRun, dets: Detections) -> list[str]:
    top = int(dets.labels.max()) + 1 if len(dets) else 0
    return [run.name_of(i) for i in range(max(top, len(run.class_names)))]


def _to_frame(run: SceneRun, index: int, dets: Detections) -> geopandas.GeoDataFrame:
    from fsanet_geo.geo.georef import to_geodataframe

    scene = run.scenes[index]
    return to_geodataframe(
        dets, class_names=_class_names_for(run, dets), transform=scene.transform, crs=scene.info.crs, scene=scene.name
    )


def result_frame(run: SceneRun) -> geopandas.GeoDataFrame:
    """The collected detections of a run without a sink, as one GeoDataFrame."""
    import pandas as pd

    if run.collected:
        frames = run.collected
        if len(frames) == 1:
            return frames[0]
        return type(frames[0])(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    return _to_frame(run, 0, Detections())
