"""`fsanet detect`: find objects in whole scenes and write them as georeferenced vectors.

Thin: parses options into a :class:`~fsanet_geo.geo.detect.detect_request.DetectRequest`,
plans the job with :func:`~fsanet_geo.geo.detect.detect_request.prepare_detect` (options
checked, settings built, scenes gathered, outputs checked), runs it with
:func:`~fsanet_geo.geo.detect.detect_job.run_detect_job` and renders its progress and
summaries on stderr (:mod:`fsanet_cli._run_render`).

Several processes: ``fsanet detect --nproc N ...`` checks the inputs
(:func:`~fsanet_geo.geo.detect.detect_job.check_detect_job`), then relaunches itself under
``torchrun --standalone --nproc-per-node N``; under ``torchrun`` (also multi-node) the tiles
are spread over the processes and rank 0 writes the one output; the other ranks stay silent.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fsanet_cli import _options as opts
from fsanet_cli._common import handle_errors, launch_torchrun, missing_parameter
from fsanet_cli._json_progress import JsonDetectRenderer
from fsanet_cli._reports import render_dry_run
from fsanet_cli._run_render import DetectRenderer
from fsanet_cli._options import Panel
from fsanet_cli._render import console, eprint
from fsanet_cli._common import TERMINATED_EXIT_CODE, Terminated, sigterm_as_interrupt
from fsanet_geo.geo.settings import DEFAULT_TILE_SIZE, OVERLAP_RULE

if TYPE_CHECKING:
    from fsanet_geo.geo.detect.detect_request import DetectRequest


class MergeMetric(str, Enum):
    ios = "ios"
    iou = "iou"


class StretchTo(str, Enum):
    model = "model"
    full = "full"


class OutputFormat(str, Enum):
    gpkg = "gpkg"
    geojson = "geojson"
    fgb = "fgb"
    shp = "shp"
    csv = "csv"
    json = "json"


INPUTS = Panel("Inputs")
PIXELS = Panel("Pixels: bands, stretch, ground sample distance")
MODEL = Panel("Model")
TILING = Panel("Tiling and merging across tiles")
OUTPUT = Panel("Output")
RUN = Panel("Run")

PLAIN_PROGRESS_EVERY_S = 30.0
"""Off a terminal (a log file, a pipe): seconds between plain progress lines."""


@handle_errors
def detect(
    scenes: list[str] = typer.Argument(None, help="Raster scene(s): GeoTIFF, COG, VRT, ...; https:// or s3:// "
                                       "URLs; STAC item JSON, ItemCollection or folder of items.",
                                       show_default=False, metavar="SCENE..."),
    scene_list: Path = INPUTS(None, "--scenes", dir_okay=False,
                              help="A text file of scenes, one path or URL per line (# comments)."),
    asset: str = INPUTS(None, "--asset", help="STAC asset to read.", show_default="the first asset with RGB bands"),
    aoi: Path = INPUTS(None, "--aoi", dir_okay=False, show_default="whole scenes",
                       help="Area of interest (vector file of polygons, any CRS): only tiles touching it "
                            "are read, detections centred outside it dropped."),
    skip_bad: bool = INPUTS(False, "--skip-bad", help="Skip (and name at the end) scenes that fail to open, "
                                                    "instead of stopping before any work."),
    skip_unreadable: bool = INPUTS(False, "--skip-unreadable",
                                   help="Skip tiles GDAL cannot read (corrupt blocks), listing them in the "
                                        "summary and the output's metadata, instead of stopping."),
    allow_no_crs: bool = INPUTS(False, "--allow-no-crs", help="Accept scenes without a CRS (pixel outputs)."),
    retry_seconds: float = INPUTS(None, "--retry-seconds", min=0.0, metavar="SECONDS",
                                  help="How long a remote scene's server errors are retried in all.",
                                  show_default="FSANET_RETRY_SECONDS, else 60"),
    bands: str = PIXELS(None, "--bands", help="1-based bands to read, e.g. 3,2,1.",
                        show_default="the non-alpha bands, RGB order for a 3-band model"),
    scale: str = PIXELS(None, "--scale", show_default="2-98 percentiles per band",
                        help="Value range MIN,MAX mapped to 0..255 for all bands, or one MIN,MAX pair per band."),
    scale_from: Path = PIXELS(None, "--scale-from", exists=True, dir_okay=False,
                              help="Reuse the stretch recorded in an earlier run's OUTPUT.run.json."),
    stretch_to: StretchTo = PIXELS(StretchTo.model, "--stretch-to",
                                   help="Where the percentiles go: the model's training levels "
                                        "(0..255 when it has none) or full 0..255."),
    gsd: str = PIXELS("auto", "--gsd", help="auto (resample to the model's GSD when they differ by "
                                             "more than 10%), native, or metres per pixel."),
    weights: Path = MODEL.put(opts.weights_option(
        help="Checkpoint (.safetensors) or ONNX export (.onnx, needs the [onnx] extra).",
        show_default="the packaged demo model")),
    score_thr: float = MODEL(None, "--score-thr", "--score-threshold", min=0.0, max=1.0,
                             help="Keep detections scoring at least this; replaces the checkpoint's "
                                  "threshold for this run (fsanet model info shows it).",
                             show_default="the checkpoint's own, 0.35 for the demo model"),
    classes: str = MODEL(None, "--classes", help="Keep only these classes, e.g. vehicle,ship.", show_default="all"),
    tile_size: int = TILING(None, "--tile-size", min=16, help="Tile side, pixels.",
                            show_default=f"max({DEFAULT_TILE_SIZE}, the model's input size)"),
    overlap: int = TILING(None, "--overlap", min=0, help="Pixels shared by neighbouring tiles (>= largest object).",
                          show_default=OVERLAP_RULE),
    nms_iou: float = TILING(0.5, "--nms-iou", min=0.01, max=1.0, help="Cross-tile merge threshold."),
    merge_metric: MergeMetric = TILING(MergeMetric.ios, "--merge-metric",
                                       help="ios (intersection over smaller, best at seams) or iou."),
    soft_nms: bool = TILING(False, "--soft-nms", help="Gaussian soft-NMS across tiles instead of hard NMS."),
    output: Path = OUTPUT(None, "-o", "--output", dir_okay=False,
                          help="One vector file for all scenes (.gpkg .geojson .fgb .shp .csv .json)."),
    output_dir: Path = OUTPUT(None, "--output-dir", file_okay=False,
                              help="Write one file per scene into this existing folder instead."),
    output_format: OutputFormat = OUTPUT(None, "--format", show_default="gpkg",
                                         help="File format with --output-dir (-o takes its file's)."),
    crs: str = OUTPUT(None, "--crs", help="CRS of one output file for scenes in several CRSs, e.g. EPSG:32633.",
                      show_default="the first scene's"),
    keep_crs: bool = OUTPUT(False, "--keep-crs", help="GeoJSON in the raster's CRS instead of WGS84."),
    preview: Path = OUTPUT(None, "--preview", dir_okay=False, help="Write a quicklook PNG with the boxes."),
    overwrite: bool = OUTPUT.put(opts.overwrite_option()),
    resume: bool = OUTPUT(False, "--resume", help="Continue an interrupted run from its finished tiles."),
    batch_size: int = RUN(4, "--batch-size", min=1, help="Tiles per model call."),
    device: str = RUN.put(opts.device_option()),
    half: bool = RUN(False, "--half", help="fp16 autocast (CUDA only)."),
    nproc: int = RUN.put(opts.nproc_option("Processes on this machine (one per GPU), launched with torchrun; "
                                           "the tiles are spread over them.")),
    threads: int = RUN.put(opts.threads_option()),
    progress: opts.ProgressFormat = RUN.put(opts.progress_option()),
    dry_run: bool = RUN(False, "--dry-run", help="Load no model, read no pixels: print per scene the tiles it "
                                                "would read and skip, the bytes of their blocks and an "
                                                "estimated time, then stop."),
    rate: float = RUN(None, "--rate", min=1e-6, show_default="a calibration on one tile",
                      help="With --dry-run: estimate at this many tiles/s."),
    as_json: bool = RUN(False, "--json", help="With --dry-run: one JSON document on stdout instead of the table."),
) -> None:
    """Detect objects in whole scenes; vectors to a file, progress and summary on stderr."""
    if not scenes and scene_list is None:  # usage error (exit 2), like a missing required argument
        missing_parameter("argument", "'SCENE...'", "Name scene files or URLs, or a list file with --scenes.")
    from fsanet_geo.geo.detect.detect_job import check_detect_job, process_rank, run_detect_job, world_size
    from fsanet_geo.geo.detect.detect_request import DetectRequest, prepare_detect

    if process_rank() > 0:  # under torchrun: rank 0 reports and writes
        console.quiet = True
    opts.apply_threads(threads)
    settings = {
        "tile_size": tile_size, "overlap": overlap, "batch_size": batch_size, "stretch_to": stretch_to.value,
        "gsd": gsd, "nms_iou": nms_iou, "merge_metric": merge_metric.value, "device": device, "half": half,
        "allow_no_crs": allow_no_crs, "resume": resume, "skip_unreadable": skip_unreadable,
        "retry_seconds": retry_seconds,
        "aoi": str(aoi) if aoi is not None else None, "crs": crs,
    }
    request = DetectRequest(
        scenes=scenes or [], scene_list=scene_list, asset=asset, output=output, output_dir=output_dir,
        output_format=output_format.value if output_format else None, preview=preview, weights=weights,
        keep_crs=keep_crs, overwrite=overwrite, skip_bad=skip_bad, nproc=nproc, score_thr=score_thr,
        soft_nms=soft_nms, bands=bands, classes=classes, scale=scale, scale_from=scale_from, settings=settings,
    )
    if dry_run or as_json or rate is not None:
        _dry_run(request, dry_run, rate, as_json)
        return
    prepared = prepare_detect(request)
    renderer = JsonDetectRenderer() if progress == opts.ProgressFormat.json else DetectRenderer(PLAIN_PROGRESS_EVERY_S)
    renderer.notes(prepared.notes)
    if nproc > 1 and world_size() == 1:
        check_detect_job(prepared.job, nproc, renderer)  # here, on the CPU, so that user errors stay one line
        raise typer.Exit(launch_torchrun(nproc))
    try:
        with sigterm_as_interrupt():  # a scheduler's SIGTERM cleans up like Ctrl-C
            run_detect_job(prepared.job, renderer)
    except KeyboardInterrupt as exc:
        renderer.interrupted()
        if isinstance(exc, Terminated):
            eprint("[yellow]terminated[/] (SIGTERM)")
            raise typer.Exit(TERMINATED_EXIT_CODE) from None
        raise
    finally:
        renderer.stop_bar()
    renderer.skipped_summary()


def _dry_run(request: DetectRequest, asked: bool, rate: float | None, as_json: bool) -> None:
    """``--dry-run``: price the job (no model, headers only) and print the report on stdout."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.geo.detect.dry_run import dry_run

    if not asked:
        raise ConfigError(f"{'--json' if as_json else '--rate'} goes with --dry-run")
    render_dry_run(dry_run(request, rate=rate), as_json=as_json)
