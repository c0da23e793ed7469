"""`fsanet detect`: find objects in whole scenes and write them as georeferenced vectors.

Thin: parses options, calls :func:`fsanet_geo.geo.detect.detect_job.run_detect_job` (which plans and
checks the outputs, loads the model, runs every output, writes previews) and renders its
progress and summaries on stderr.

Several processes: ``fsanet detect --nproc N ...`` checks the inputs
(:func:`~fsanet_geo.geo.detect.detect_job.check_detect_job`), then relaunches itself under
``torchrun --standalone --nproc-per-node N``; under ``torchrun`` (also multi-node) the tiles
are spread over the processes and rank 0 writes the one output; the other ranks stay silent.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fsanet_cli._common import handle_errors, launch_torchrun, missing_parameter, parse_csv
from fsanet_cli._options import apply_threads, threads_option
from fsanet_cli._render import console, duration, eprint, plural, warning_line
from fsanet_cli._signals import TERMINATED_EXIT_CODE, Terminated, sigterm_as_interrupt
from fsanet_geo.geo.settings import OVERLAP_RULE

if TYPE_CHECKING:
    from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary


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


@handle_errors
def detect(
    scenes: list[str] = typer.Argument(None, help="Raster scene(s): GeoTIFF, COG, VRT, ...; https:// or s3:// "
                                       "URLs; STAC item JSON, ItemCollection or folder of items.",
                                       show_default=False, metavar="SCENE..."),
    scene_list: Path = typer.Option(None, "--scenes", dir_okay=False,
                                    help="A text file of scenes, one path or URL per line (# comments)."),
    asset: str = typer.Option(None, "--asset", help="STAC asset to read.", show_default="the first asset with RGB bands"),
    aoi: Path = typer.Option(None, "--aoi", dir_okay=False,
                             help="Area of interest (vector file of polygons, any CRS): only tiles touching it "
                                  "are read, detections centred outside it dropped.", show_default="whole scenes"),
    crs: str = typer.Option(None, "--crs", help="CRS of one output file for scenes in several CRSs, e.g. EPSG:32633.",
                            show_default="the first scene's"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip (and name at the end) scenes that fail to open, "
                                                          "instead of stopping before any work."),
    output: Path = typer.Option(None, "-o", "--output", dir_okay=False,
                                help="One vector file for all scenes (.gpkg .geojson .fgb .shp .csv .json)."),
    output_dir: Path = typer.Option(None, "--output-dir", file_okay=False,
                                    help="Write one file per scene into this existing folder instead."),
    output_format: OutputFormat = typer.Option(None, "--format", show_default="gpkg",
                                               help="File format with --output-dir (-o takes its file's)."),
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
    score_thr: float = typer.Option(None, "--score-thr", "--score-threshold", min=0.0, max=1.0,
                                    help="Keep detections scoring at least this; replaces the checkpoint's "
                                         "threshold for this run (fsanet model info shows it).",
                                    show_default="the checkpoint's own, 0.35 for the demo model"),
    nms_iou: float = typer.Option(0.5, "--nms-iou", min=0.01, max=1.0, help="Cross-tile merge threshold."),
    merge_metric: MergeMetric = typer.Option(MergeMetric.ios, "--merge-metric",
                                             help="ios (intersection over smaller, best at seams) or iou."),
    soft_nms: bool = typer.Option(False, "--soft-nms", help="Gaussian soft-NMS across tiles instead of hard NMS."),
    classes: str = typer.Option(None, "--classes", help="Keep only these classes, e.g. vehicle,ship.",
                                show_default="all"),
    bands: str = typer.Option(None, "--bands", help="1-based bands to read, e.g. 3,2,1.",
                              show_default="the non-alpha bands, RGB order for a 3-band model"),
    scale: str = typer.Option(None, "--scale", help="Value range MIN,MAX mapped to 0..255 for all bands, "
                                                    "or one MIN,MAX pair per band.",
                              show_default="2-98 percentiles per band"),
    scale_from: Path = typer.Option(None, "--scale-from", exists=True, dir_okay=False,
                                    help="Reuse the stretch recorded in an earlier run's OUTPUT.run.json."),
    stretch_to: StretchTo = typer.Option(StretchTo.model, "--stretch-to",
                                         help="Where the percentiles go: the model's training levels "
                                              "(0..255 when it has none) or full 0..255."),
    gsd: str = typer.Option("auto", "--gsd", help="auto (resample to the model's GSD when they differ by "
                                                   "more than 10%), native, or metres per pixel."),
    keep_crs: bool = typer.Option(False, "--keep-crs", help="GeoJSON in the raster's CRS instead of WGS84."),
    allow_no_crs: bool = typer.Option(False, "--allow-no-crs", help="Accept scenes without a CRS (pixel outputs)."),
    preview: Path = typer.Option(None, "--preview", dir_okay=False, help="Write a quicklook PNG with the boxes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its finished tiles."),
    skip_unreadable: bool = typer.Option(False, "--skip-unreadable",
                                         help="Skip tiles GDAL cannot read (corrupt blocks), listing them in the "
                                              "summary and the output's metadata, instead of stopping."),
    nproc: int = typer.Option(1, "--nproc", min=1,
                              help="Processes on this machine (one per GPU), launched with torchrun; "
                                   "the tiles are spread over them."),
    threads: int = threads_option(),
) -> None:
    """Detect objects in whole scenes; vectors to a file, progress and summary on stderr."""
    if not scenes and scene_list is None:  # usage error (exit 2), like a missing required argument
        missing_parameter("argument", "'SCENE...'", "Name scene files or URLs, or a list file with --scenes.")
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.geo.detect.detect_job import check_detect_job, plan_detect_job, process_rank, run_detect_job, world_size
    from fsanet_geo.geo.detect.scene_list import gather_scenes
    from fsanet_geo.geo.settings import DetectSettings

    if process_rank() > 0:  # under torchrun: rank 0 reports and writes
        console.quiet = True
    if output is not None and output_format is not None and output.suffix.lower() != f".{output_format.value}":
        raise ConfigError(f"-o {output.name} and --format {output_format.value} disagree: -o writes the format "
                          f"of its extension; drop --format or name the file {output.stem}.{output_format.value}")
    from fsanet_geo.geo.pixels.stretch import scale_from_record

    apply_threads(threads)
    scale_range = parse_csv(scale, float, "--scale")
    if scale_range is not None and (len(scale_range) < 2 or len(scale_range) % 2):
        raise ConfigError(f"--scale takes MIN,MAX or one MIN,MAX pair per band, got {scale!r}")
    if scale_from is not None:
        if scale_range is not None:
            raise ConfigError("give --scale or --scale-from, not both")
        scale_range = list(scale_from_record(scale_from))
    settings = DetectSettings(
        tile_size=tile_size,
        overlap=overlap,
        batch_size=batch_size,
        bands=parse_csv(bands, int, "--bands"),
        scale=tuple(scale_range) if scale_range else None,
        stretch_to=stretch_to.value,
        gsd=gsd,
        score_thr=score_thr or 0.0,
        nms_iou=nms_iou,
        merge_metric=merge_metric.value,
        merge_method="gaussian" if soft_nms else "hard",
        classes=parse_csv(classes, str, "--classes"),
        device=device,
        half=half,
        allow_no_crs=allow_no_crs,
        resume=resume,
        skip_unreadable=skip_unreadable,
        aoi=str(aoi) if aoi is not None else None,
        crs=crs,
    )
    if skip_bad and (nproc > 1 or world_size() > 1):
        raise ConfigError("--skip-bad works in one process only: drop it or --nproc")
    gathered = gather_scenes(scenes or [], scene_list=scene_list, asset=asset)
    for note in gathered.notes:
        eprint(f"[yellow]note:[/] {note}")
    job = plan_detect_job(gathered.scenes, settings, output=output, output_dir=output_dir,
                          file_format=(output_format or OutputFormat.gpkg).value, preview=preview, weights=weights, keep_crs=keep_crs,
                          overwrite=overwrite, skip_bad=skip_bad,
                          model_score_thr=score_thr)
    renderer = _Renderer()
    if nproc > 1 and world_size() == 1:
        check_detect_job(job, nproc, renderer)  # here, on the CPU, so that user errors stay one line
        raise typer.Exit(launch_torchrun(nproc))
    try:
        with sigterm_as_interrupt():  # a scheduler's SIGTERM cleans up like Ctrl-C
            run_detect_job(job, renderer)
    except KeyboardInterrupt as exc:
        renderer.interrupted()
        if isinstance(exc, Terminated):
            eprint("[yellow]terminated[/] (SIGTERM)")
            raise typer.Exit(TERMINATED_EXIT_CODE) from None
        raise
    finally:
        renderer.stop_bar()
    renderer.skipped_summary()


PLAIN_PROGRESS_EVERY_S = 30.0
"""Off a terminal (a log file, a pipe): seconds between plain progress lines."""


class _Renderer:
    """Renders a job's events on stderr: a progress bar per output (on a terminal), or a plain
    progress line every :data:`PLAIN_PROGRESS_EVERY_S` seconds off one; a summary line."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.bar_running = False
        self.output: Path | None = None
        self.started = 0.0
        self.first_done: int | None = None
        self.skipped: list[str] = []
        self.last_line = 0.0

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
            TextColumn("{task.fields[fetched]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.output, self.started, self.first_done = output, time.perf_counter(), None
        self.last_line = self.started
        # Off a terminal (a log file, a pipe) no bar, only the summary line.
        self.bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
        self.task = self.bar.add_task(output.name, total=None, skipped=0, objects=0, rate="-", fetched="")
        self.bar_running = False

    def progress(self, output: Path, p: DetectProgress) -> None:
        if self.first_done is None:
            self.first_done = p.tiles_done  # resumed tiles do not count towards the rate
            if not self.bar.disable:  # only once the scenes passed their checks: errors stay one line
                self.bar.start()
                self.bar_running = True
        rate = (p.tiles_done - self.first_done) / max(time.perf_counter() - self.started, 1e-9)
        if self.bar.disable:
            self.plain_line(output, p, rate)
            return
        self.bar.update(self.task, total=p.tiles_total, completed=p.tiles_done, skipped=p.tiles_skipped,
                        objects=p.detections, rate=f"{rate:.1f}", description=f"{output.name} ({p.scene})",
                        fetched=_fetched(p))

    def plain_line(self, output: Path, p: DetectProgress, rate: float) -> None:
        """``out.gpkg (scene.tif): 120/400 tiles, 37 objects, 3.2 tiles/s, ETA 0:01:27``, at most
        one per :data:`PLAIN_PROGRESS_EVERY_S` seconds and never for the last tile (the summary says it)."""
        now = time.perf_counter()
        if (now - self.last_line < PLAIN_PROGRESS_EVERY_S or p.tiles_done >= p.tiles_total
                or p.tiles_done <= (self.first_done or 0)):  # nothing computed yet, or all (the summary)
            return
        self.last_line = now
        eta = duration((p.tiles_total - p.tiles_done) / rate) if rate > 0 else "-:--:--"
        eprint(f"{output.name} ({p.scene}): {p.tiles_done}/{plural(p.tiles_total, 'tile')}, "
               f"{plural(p.detections, 'object')}, {rate:.1f} tiles/s, ETA {eta}", markup=False)

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
        fetched = f", {_fetched(p)}" if p.bytes_fetched is not None else ""
        eprint(f"{plural(p.detections, 'object')} ({per_class}) in {plural(p.tiles_total, 'tile')} "
               f"({p.tiles_skipped} skipped{resumed}), "
               f"{elapsed:.1f} s, {computed / max(elapsed, 1e-9):.1f} tiles/s{fetched} -> {summary.output}")
        if summary.unreadable:
            shown = ", ".join(w.describe() for w in summary.unreadable[:5])
            more = f" and {len(summary.unreadable) - 5} more" if len(summary.unreadable) > 5 else ""
            warning_line(f"skipped {len(summary.unreadable)} unreadable window(s): {shown}{more} "
                         "(each with GDAL's reason in the output's metadata)")

    def preview_written(self, path: Path) -> None:
        eprint(f"preview -> {path}")

    def scene_skipped(self, scene: str, reason: str) -> None:
        self.skipped.append(scene)
        eprint(f"[yellow]skipped:[/] {scene}: {reason}")

    def skipped_summary(self) -> None:
        """After the run: name every scene set aside (failed to open with --skip-bad, or outside --aoi)."""
        if self.skipped:
            eprint(f"{len(self.skipped)} scene(s) skipped: {', '.join(self.skipped)}")

    def interrupted(self) -> None:
        """Ctrl-C: say where the finished tiles of the output being written are kept."""
        from fsanet_geo.geo.outputs.journal import journal_dir

        self.stop_bar()
        if self.output is not None and journal_dir(self.output).is_dir():
            eprint(f"finished tiles kept in {journal_dir(self.output)}: run the same command with --resume to continue")


def _fetched(p: DetectProgress) -> str:
    """``fetched 12.3 MiB`` for a run reading remote scenes; empty otherwise."""
    return "" if p.bytes_fetched is None else f"fetched {p.bytes_fetched / 2**20:.1f} MiB"
