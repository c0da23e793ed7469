"""`fsanet detect`: find objects in whole scenes and write them as georeferenced vectors.

Thin: parses options, calls :func:`fsanet_geo.geo.detect_job.run_detect_job` (which plans and
checks the outputs, loads the model, runs every output, writes previews) and renders its
progress and summaries on stderr.

Several processes: ``fsanet detect --nproc N ...`` checks the inputs
(:func:`~fsanet_geo.geo.detect_job.check_detect_job`), then relaunches itself under
``torchrun --standalone --nproc-per-node N``; under ``torchrun`` (also multi-node) the tiles
are spread over the processes and rank 0 writes the one output; the other ranks stay silent.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fsanet_cli._common import handle_errors, launch_torchrun, parse_csv
from fsanet_cli._options import apply_threads, threads_option
from fsanet_cli._render import console, eprint
from fsanet_geo.geo.settings import OVERLAP_RULE

if TYPE_CHECKING:
    from fsanet_geo.geo.run import DetectProgress, DetectSummary


class MergeMetric(str, Enum):
    ios = "ios"
    iou = "iou"


class OutputFormat(str, Enum):
    gpkg = "gpkg"
    geojson = "geojson"
    fgb = "fgb"
    shp = "shp"
    csv = "csv"
    json = "json"


_SCENE = {"exists": True, "file_okay": True, "dir_okay": False, "readable": True}


@handle_errors
def detect(
    scenes: list[Path] = typer.Argument(..., **_SCENE, help="Raster scene(s): GeoTIFF, COG, VRT, ..."),
    output: Path = typer.Option(None, "-o", "--output", dir_okay=False,
                                help="One vector file for all scenes (.gpkg .geojson .fgb .shp .csv .json)."),
    output_dir: Path = typer.Option(None, "--output-dir", file_okay=False,
                                    help="Write one file per scene into this existing folder instead."),
    output_format: OutputFormat = typer.Option(OutputFormat.gpkg, "--format",
                                               help="File format with --output-dir."),
    weights: Path = typer.Option(None, "--weights", exists=True, dir_okay=False,
                                 help="Checkpoint (.safetensors) or ONNX export (.onnx, needs the [onnx] extra).",
                                 show_default="the packaged demo model"),
    tile_size: int = typer.Option(None, "--tile-size", min=16, help="Tile side, pixels.",
                                  show_default="the model's input size"),
    overlap: int = typer.Option(None, "--overlap", min=0,
                                help="Pixels shared by neighbouring tiles (>= largest object).",
                                show_default=OVERLAP_RULE),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Tiles per model call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    half: bool = typer.Option(False, "--half", help="fp16 autocast (CUDA only)."),
    score_thr: float = typer.Option(0.0, "--score-thr", min=0.0, max=1.0,
                                    help="Drop detections scoring below this (on top of the model's own)."),
    nms_iou: float = typer.Option(0.5, "--nms-iou", min=0.01, max=1.0, help="Cross-tile merge threshold."),
    merge_metric: MergeMetric = typer.Option(MergeMetric.ios, "--merge-metric",
                                             help="ios (intersection over smaller, best at seams) or iou."),
    soft_nms: bool = typer.Option(False, "--soft-nms", help="Gaussian soft-NMS across tiles instead of hard NMS."),
    classes: str = typer.Option(None, "--classes", help="Keep only these classes, e.g. vehicle,ship.",
                                show_default="all"),
    bands: str = typer.Option(None, "--bands", help="1-based bands to read, e.g. 3,2,1."),
    scale: str = typer.Option(None, "--scale", help="Value range MIN,MAX mapped to 0..255.",
                              show_default="2-98 percentiles per band"),
    keep_crs: bool = typer.Option(False, "--keep-crs", help="GeoJSON in the raster's CRS instead of WGS84."),
    allow_no_crs: bool = typer.Option(False, "--allow-no-crs", help="Accept scenes without a CRS (pixel outputs)."),
    preview: Path = typer.Option(None, "--preview", dir_okay=False, help="Write a quicklook PNG with the boxes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its finished tiles."),
    nproc: int = typer.Option(1, "--nproc", min=1,
                              help="Processes on this machine (one per GPU), launched with torchrun; "
                                   "the tiles are spread over them."),
    threads: int = threads_option(),
) -> None:
    """Detect objects in whole scenes; vectors to a file, progress and summary on stderr."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.geo.detect_job import check_detect_job, plan_detect_job, process_rank, run_detect_job, world_size
    from fsanet_geo.geo.settings import DetectSettings

    if process_rank() > 0:  # under torchrun: rank 0 reports and writes
        console.quiet = True
    apply_threads(threads)
    scale_range = parse_csv(scale, float, "--scale")
    if scale_range is not None and len(scale_range) != 2:
        raise ConfigError(f"--scale takes MIN,MAX, got {scale!r}")
    settings = DetectSettings(
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        bands=parse_csv(bands, int, "--bands"),
        scale=tuple(scale_range) if scale_range else None,  # type: ignore[arg-type]
        score_thr=score_thr,
        nms_iou=nms_iou,
        merge_metric=merge_metric.value,
        merge_method="gaussian" if soft_nms else "hard",
        classes=parse_csv(classes, str, "--classes"),
        device=device,
        half=half,
        allow_no_crs=allow_no_crs,
        resume=resume,
    )
    job = plan_detect_job(scenes, settings, output=output, output_dir=output_dir, file_format=output_format.value,
                          preview=preview, weights=weights, keep_crs=keep_crs, overwrite=overwrite)
    renderer = _Renderer()
    if nproc > 1 and world_size() == 1:
        check_detect_job(job, nproc, renderer)  # here, on the CPU, so that user errors stay one line
        raise typer.Exit(launch_torchrun(nproc))
    try:
        run_detect_job(job, renderer)
    except KeyboardInterrupt:
        renderer.interrupted()
        raise
    finally:
        renderer.stop_bar()


class _Renderer:
    """Renders a job's events on stderr: a progress bar per output (on a terminal), a summary line."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.bar_running = False
        self.output: Path | None = None
        self.started = 0.0
        self.first_done: int | None = None

    def demo_model(self) -> None:
        eprint("[yellow]note:[/] using the packaged demo model, trained on synthetic data only; "
               "pass --weights for real detections")

    def output_started(self, output: Path) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} tiles"),
            TextColumn("skipped {task.fields[skipped]}"),
            TextColumn("objects {task.fields[objects]}"),
            TextColumn("{task.fields[rate]} tiles/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.output, self.started, self.first_done = output, time.perf_counter(), None
        # Off a terminal (a log file, a pipe) no bar, only the summary line.
        self.bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
        self.task = self.bar.add_task(output.name, total=None, skipped=0, objects=0, rate="-")
        self.bar_running = False

    def progress(self, output: Path, p: DetectProgress) -> None:
        if self.first_done is None:
            self.first_done = p.tiles_done  # resumed tiles do not count towards the rate
            if not self.bar.disable:  # only once the scenes passed their checks: errors stay one line
                self.bar.start()
                self.bar_running = True
        rate = (p.tiles_done - self.first_done) / max(time.perf_counter() - self.started, 1e-9)
        self.bar.update(self.task, total=p.tiles_total, completed=p.tiles_done, skipped=p.tiles_skipped,
                        objects=p.detections, rate=f"{rate:.1f}", description=f"{output.name} ({p.scene})")

    def stop_bar(self) -> None:
        if self.bar is not None and self.bar_running:  # Progress.stop() prints a blank line if never started
            self.bar_running = False
            self.bar.stop()

    def output_finished(self, summary: DetectSummary) -> None:
        self.stop_bar()
        p = summary.progress
        elapsed = time.perf_counter() - self.started
        computed = p.tiles_done - summary.resumed_tiles
        per_class = ", ".join(f"{name} {n}" for name, n in p.class_counts.items()) or "none"
        resumed = f", {summary.resumed_tiles} resumed" if summary.resumed_tiles else ""
        eprint(f"{p.detections} objects ({per_class}) in {p.tiles_total} tiles ({p.tiles_skipped} skipped{resumed}), "
               f"{elapsed:.1f} s, {computed / max(elapsed, 1e-9):.1f} tiles/s -> {summary.output}")

    def preview_written(self, path: Path) -> None:
        eprint(f"preview -> {path}")

    def interrupted(self) -> None:
        """Ctrl-C: say where the finished tiles of the output being written are kept."""
        from fsanet_geo.geo.journal import journal_dir

        self.stop_bar()
        if self.output is not None and journal_dir(self.output).is_dir():
            eprint(f"finished tiles kept in {journal_dir(self.output)}: run the same command with --resume to continue")
