"""``fsanet detect --dry-run``: what a job would cost, from headers only.

:func:`dry_run` gathers and opens the scenes as :func:`~fsanet_geo.geo.detect.detect_request.prepare_detect`
and the run do (local files, URLs, S3, STAC items, ``--scenes`` lists), reading only headers
and block indexes: per scene the tiles it would read, those it would skip (outside the area
of interest; wholly in absent blocks of a sparse GeoTIFF, see
:mod:`~fsanet_geo.geo.pixels.sparse`), those read but all nodata in a low overview (the run
reads them and gives the model nothing: an estimate, an overview can miss a few pixels), and
the bytes of the TIFF blocks under the tiles to read (each block once). The model's weights
are never loaded: tiling comes from the checkpoint's metadata, and the time from a stated
rate (tiles/s) or a calibration on one tile with a random-init network of the checkpoint's
architecture.

Units: tiles are tile windows (scene pixels), bytes are file bytes, seconds wall time of
the model alone (reading, network and writing are not in the estimate).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any

from fsanet_geo.device import resolve_device
from fsanet_geo.errors import CheckpointError, RasterError
from fsanet_geo.geo.detect.detect_job import DetectJob, demo_weights_path
from fsanet_geo.geo.detect.detect_request import DetectRequest, prepare_detect
from fsanet_geo.geo.detect.job_model import checkpoint_stand_in
from fsanet_geo.geo.pixels.remote import SceneInput, is_remote, open_raster, scene_label
from fsanet_geo.geo.settings import DetectSettings, predictor_config, resolve_tiling

OVERVIEW_MIN_TILE_PX = 16
"""An overview tells empty tiles only when a tile still spans this many of its pixels a side."""

OVERVIEW_MAX_PIXELS = 4096 * 4096
"""Nor when it is larger than this (pixels): a dry run reads headers and small overviews only."""

CALIBRATION_WARMUP_PX = 64
"""Side of the tile run once before the timed one (first-call costs stay out of the rate)."""


@dataclass(frozen=True)
class SceneCost:
    """One scene's share of a job. ``tiles``: all its tile windows; ``read`` those the run
    reads; ``skipped_aoi`` outside the area of interest; ``skipped_nodata`` wholly in absent
    blocks; ``empty`` read but all nodata in a low overview (no model time). ``blocks`` /
    ``bytes``: TIFF blocks stored under the tiles read (None: no block index, e.g. a VRT).
    ``set_aside``: why the run would leave the scene out (then nothing is read)."""

    scene: str
    tiles: int
    read: int
    skipped_aoi: int
    skipped_nodata: int
    empty: int
    blocks: int | None
    bytes: int | None
    remote: bool
    set_aside: str | None = None


@dataclass(frozen=True)
class TileRate:
    """Tiles per second of the model, and how it was found: ``source`` "calibrated" or "stated"."""

    tiles_per_s: float
    source: str
    detail: str


@dataclass
class DryRunReport:
    """A priced job: ``scenes`` in order, the ``rate``, tiling, and notes for the user."""

    scenes: list[SceneCost]
    rate: TileRate
    tile_size: int
    overlap: int
    device: str
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> SceneCost:
        """The scenes summed (``bytes`` None when no scene has a block index)."""
        known = [s.bytes for s in self.scenes if s.bytes is not None]
        blocks = [s.blocks for s in self.scenes if s.blocks is not None]
        return SceneCost("total", sum(s.tiles for s in self.scenes), sum(s.read for s in self.scenes),
                         sum(s.skipped_aoi for s in self.scenes), sum(s.skipped_nodata for s in self.scenes),
                         sum(s.empty for s in self.scenes),
                         sum(blocks) if blocks else None, sum(known) if known else None,
                         any(s.remote for s in self.scenes))

    @property
    def seconds(self) -> float:
        """Estimated model time of the tiles with data, seconds."""
        return (self.total.read - self.total.empty) / self.rate.tiles_per_s

    def payload(self) -> dict[str, Any]:
        """The report as one JSON-safe document (``--json``)."""
        return {"scenes": [dataclasses.asdict(s) for s in self.scenes], "total": dataclasses.asdict(self.total),
                "tile_size": self.tile_size, "overlap": self.overlap, "device": self.device,
                "rate": dataclasses.asdict(self.rate), "estimated_seconds": round(self.seconds, 3),
                "notes": list(self.notes)}


def dry_run(request: DetectRequest, *, rate: float | None = None) -> DryRunReport:
    """Price the job ``request`` asks for without running it (see the module docstring).

    ``rate``: tiles/s to assume; None calibrates on this machine's device. An output that
    exists without ``overwrite`` (or ``resume``) is a note, not an error.

    Raises:
        ConfigError, RasterError, OutputError: what the run would refuse before any work
            (bad options, a scene that does not open without ``skip_bad``, an unwritable folder).
        CheckpointError: weights whose metadata does not read (an ONNX file has none to read).
    """
    prepared = prepare_detect(dataclasses.replace(request, overwrite=True))
    job = prepared.job
    weights = job.weights or demo_weights_path()
    stand_in = checkpoint_stand_in(weights)
    if stand_in is None:
        raise CheckpointError(f"--dry-run reads the model's settings from a .safetensors checkpoint's metadata; "
                              f"{weights} has none that reads")
    tile, overlap = resolve_tiling(job.settings, stand_in)
    scenes = [_scene_cost(scene, job, stand_in, tile, overlap) for scene in job.scenes]
    notes = list(prepared.notes) + _output_notes(job, request)
    tile_rate = (TileRate(rate, "stated", "the rate stated with --rate") if rate is not None
                 else calibrate(stand_in.config, tile, job.settings.device))
    return DryRunReport(scenes, tile_rate, tile, overlap, str(resolve_device(job.settings.device)), notes)


def _output_notes(job: DetectJob, request: DetectRequest) -> list[str]:
    if request.overwrite or job.settings.resume:
        return []
    return [f"{out} exists: the run would refuse it without --overwrite (or --resume)"
            for out in [*job.outputs.values(), *job.previews.values()] if out.exists()]


def _scene_cost(scene: SceneInput, job: DetectJob, model: Any, tile: int, overlap: int) -> SceneCost:
    """Open ``scene`` as the run would (headers only) and count its tiles and block bytes."""
    from fsanet_geo.geo.pixels.aoi import aoi_windows
    from fsanet_geo.geo.pixels.reader import gdal_env
    from fsanet_geo.geo.pixels.sparse import SparseBlocks
    from fsanet_geo.geo.pixels.tiled_scene import open_tiled_scenes

    s: DetectSettings = job.settings
    imagery = getattr(model, "imagery", None)
    gsd, bands = getattr(imagery, "gsd", None), getattr(imagery, "bands", None)
    try:
        whole = open_tiled_scenes([scene], dataclasses.replace(s, aoi=None), tile, overlap,
                                  predictor_config(model, "in_channels"), warn=False, model_gsd=gsd,
                                  model_bands=bands)[0]
    except RasterError as exc:
        if not job.skip_bad:
            raise
        return SceneCost(scene_label(scene), 0, 0, 0, 0, 0, None, None, is_remote(scene), set_aside=str(exc))
    windows = whole.windows
    if s.aoi is not None:
        windows, _ = aoi_windows(s.aoi, whole.info, windows, warn=False)
    remote = is_remote(whole.info.path)
    with gdal_env(s.gdal_cache_mb * 2**20, remote=remote), open_raster(whole.info.path) as ds:
        blocks = SparseBlocks(ds, whole.info.bands, whole.info.mask_kind)
        read = [w for w in windows if not blocks.is_absent(w)]
        stored = blocks.stored_bytes(read)
        empty = _empty_in_overview(ds, whole.info, read, tile) if whole.info.mask_kind == "nodata" else 0
    aoi_out = len(whole.windows) - len(windows)
    return SceneCost(whole.name, len(whole.windows), len(read), aoi_out, len(windows) - len(read), empty,
                     stored[0] if stored else None, stored[1] if stored else None, remote,
                     set_aside="outside the area of interest" if not windows else None)


def _empty_in_overview(ds: Any, info: Any, windows: list[Any], tile: int) -> int:
    """How many of ``windows`` hold only nodata in the scene's smallest overview in which a tile
    still spans :data:`OVERVIEW_MIN_TILE_PX` px a side (0 without one, or when it is over
    :data:`OVERVIEW_MAX_PIXELS`)."""
    import numpy as np

    factors = [f for f in ds.overviews(info.bands[0]) if tile / f >= OVERVIEW_MIN_TILE_PX]
    if not factors or not windows or any(nd is None for nd in info.nodata):
        return 0
    f = max(factors)
    oh, ow = -(-info.height // f), -(-info.width // f)
    if oh * ow > OVERVIEW_MAX_PIXELS:
        return 0
    data = ds.read(list(info.bands), out_shape=(len(info.bands), oh, ow))
    valid = np.zeros((oh, ow), bool)
    for band, nd in zip(data, info.nodata):
        valid |= ~np.isnan(band) if np.isnan(nd) else band != nd
    sy, sx = oh / info.height, ow / info.width

    def span(start: int, end: int, scale: float) -> slice:  # overview pixels under [start, end) scene pixels
        return slice(math.floor(start * scale), max(math.floor(start * scale) + 1, math.ceil(end * scale)))

    return sum(not valid[span(w.row_off, w.row_end, sy), span(w.col_off, w.col_end, sx)].any() for w in windows)


def calibrate(config: Any, tile: int, device: str) -> TileRate:
    """Tiles/s of a random-init network of ``config``'s architecture (BatchNorm folded, as a
    run's) on one ``tile`` x ``tile`` px tile on ``device``, after a small warm-up call."""
    import torch

    from fsanet_geo.model.detector import FSANet
    from fsanet_geo.model.files.fold_bn import fold_batchnorm

    dev = resolve_device(device)
    torch.manual_seed(0)
    net = FSANet(config).eval()
    fold_batchnorm(net)
    net.to(dev)
    channels = int(config.in_channels)
    with torch.inference_mode():
        net(torch.zeros((1, channels, CALIBRATION_WARMUP_PX, CALIBRATION_WARMUP_PX), dtype=torch.uint8, device=dev))
        image = torch.randint(0, 256, (1, channels, tile, tile), dtype=torch.uint8, device=dev)
        _sync(dev)
        start = time.perf_counter()
        net(image)
        _sync(dev)
        seconds = time.perf_counter() - start
    preset = getattr(config, "preset", None) or config.backbone
    return TileRate(1.0 / seconds, "calibrated",
                    f"calibrated: {preset}, random init, 1 tile of {tile} px in {seconds:.2f} s")


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
