"""`fsanet detect`: find objects in whole scenes and write them as georeferenced vectors.

Thin: parses options, checks outputs before any work, loads the model, calls
:func:`fsanet_geo.geo.pipeline.detect_to_file` per output, renders progress on stderr.

Several processes: ``fsanet detect --nproc N ...`` checks the inputs, then relaunches
itself under ``torchrun --standalone --nproc-per-node N``; under ``torchrun`` (also
multi-node) the tiles are spread over the processes and rank 0 writes the one output
(:mod:`fsanet_geo.geo.distributed_detect`); the other ranks stay silent.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from fsanet_cli._common import console, eprint, handle_errors, launch_torchrun, parse_csv


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


def demo_weights_path() -> Path:
    """The packaged demo checkpoint (may not exist in this install)."""
    import fsanet_geo

    return Path(fsanet_geo.__file__).resolve().parent / "weights" / "demo.safetensors"


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
                                 help="Checkpoint (.safetensors); default: the packaged demo model."),
    tile_size: int = typer.Option(None, "--tile-size", min=16, help="Tile side, pixels (default: the model's)."),
    overlap: int = typer.Option(None, "--overlap", min=0,
                                help="Pixels shared by neighbouring tiles (default: 64; >= largest object)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1, help="Tiles per model call."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    half: bool = typer.Option(False, "--half", help="fp16 autocast (CUDA only)."),
    score_thr: float = typer.Option(0.0, "--score-thr", min=0.0, max=1.0,
                                    help="Drop detections scoring below this (on top of the model's own)."),
    nms_iou: float = typer.Option(0.5, "--nms-iou", min=0.01, max=1.0, help="Cross-tile merge threshold."),
    merge_metric: MergeMetric = typer.Option(MergeMetric.ios, "--merge-metric",
                                             help="ios (intersection over smaller, best at seams) or iou."),
    soft_nms: bool = typer.Option(False, "--soft-nms", help="Gaussian soft-NMS across tiles instead of hard NMS."),
    classes: str = typer.Option(None, "--classes", help="Keep only these classes, e.g. vehicle,ship."),
    bands: str = typer.Option(None, "--bands", help="1-based bands to read, e.g. 3,2,1."),
    scale: str = typer.Option(None, "--scale", help="Value range MIN,MAX mapped to 0..255 (default: 2-98 percentiles)."),
    keep_crs: bool = typer.Option(False, "--keep-crs", help="GeoJSON in the raster's CRS instead of WGS84."),
    allow_no_crs: bool = typer.Option(False, "--allow-no-crs", help="Accept scenes without a CRS (pixel outputs)."),
    preview: Path = typer.Option(None, "--preview", dir_okay=False, help="Write a quicklook PNG with the boxes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its finished tiles."),
    nproc: int = typer.Option(1, "--nproc", min=1,
                              help="Processes on this machine (one per GPU), launched with torchrun; "
                                   "the tiles are spread over them."),
) -> None:
    """Detect objects in whole scenes; vectors to a file, progress and summary on stderr."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.geo.pipeline import DetectSettings, check_scenes
    from fsanet_geo.io_utils import check_output_path

    rank = int(os.environ.get("RANK", "0"))  # under torchrun: rank 0 reports and writes
    if rank > 0:
        console.quiet = True
    outputs = _outputs(scenes, output, output_dir, output_format)
    previews = _previews(preview, scenes) if preview is not None else {}
    if rank == 0:
        for path in [*outputs.values(), *previews.values()]:
            check_output_path(path, overwrite=overwrite)
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
    settings.validate()
    from fsanet_geo.device import resolve_device

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _detect_distributed(scenes, outputs, previews, settings, weights, keep_crs=keep_crs, overwrite=overwrite)
        return
    if nproc > 1:
        # Check what can be checked here (on the CPU), so that user errors stay one line.
        if resolve_device(device).type == "cuda" and nproc > _gpu_count():
            raise ConfigError(f"--nproc {nproc} needs one GPU per process but this machine has {_gpu_count()}")
        check_scenes(scenes, _load_model(weights, "cpu"), dataclasses.replace(settings, device="cpu", half=False))
        raise typer.Exit(launch_torchrun(nproc))
    model = _load_model(weights, str(resolve_device(device)))
    check_scenes(scenes, model, settings)  # every scene, before any output is started
    for group, out in outputs.items():
        _run_one(list(group), model, out, settings, previews, keep_crs=keep_crs, overwrite=overwrite)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _detect_distributed(
    scenes: list[Path],
    outputs: dict[tuple[Path, ...], Path],
    previews: dict[Path, Path],
    settings: Any,
    weights: Path | None,
    *,
    keep_crs: bool,
    overwrite: bool,
) -> None:
    """Under torchrun: every process loads the model on its device and checks every scene
    (a failure on any process stops all); then each output is one distributed run."""
    from fsanet_geo.distributed import agreed
    from fsanet_geo.geo.distributed_detect import init_detect_context
    from fsanet_geo.geo.pipeline import check_scenes

    ctx = init_detect_context(settings.device)
    try:
        settings = dataclasses.replace(settings, device=str(ctx.device))

        def check() -> Any:
            model = _load_model(weights, str(ctx.device))
            check_scenes(scenes, model, settings)
            return model

        model = agreed(ctx, check)
        for group, out in outputs.items():
            _run_one(list(group), model, out, settings, previews, keep_crs=keep_crs, overwrite=overwrite,
                     context=ctx)
    finally:
        ctx.close()


def _outputs(
    scenes: list[Path], output: Path | None, output_dir: Path | None, fmt: OutputFormat
) -> dict[tuple[Path, ...], Path]:
    """Scene group -> output file: all scenes into ``output``, or one file each in ``output_dir``.

    Raises :class:`OutputError` for an unsupported ``output`` extension (before any work).
    """
    from fsanet_geo.errors import ConfigError, OutputError
    from fsanet_geo.geo.export import output_format

    if (output is None) == (output_dir is None):
        raise ConfigError("give exactly one of -o/--output FILE or --output-dir DIR")
    if output is not None:
        output_format(output)
        return {tuple(scenes): output}
    assert output_dir is not None
    if not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} does not exist")
    stems = [s.stem for s in scenes]
    if len(set(stems)) != len(stems):
        raise ConfigError("two scenes share a file name: write them into one file with -o instead")
    return {(s,): output_dir / f"{s.stem}.{fmt.value}" for s in scenes}


def _previews(preview: Path, scenes: list[Path]) -> dict[Path, Path]:
    if preview.suffix.lower() != ".png":
        from fsanet_geo.errors import ConfigError

        raise ConfigError(f"--preview writes a PNG: give a .png path, got {preview}")
    if len(scenes) == 1:
        return {scenes[0]: preview}
    return {s: preview.with_name(f"{preview.stem}_{s.stem}{preview.suffix}") for s in scenes}


def _load_model(weights: Path | None, device: str) -> Any:
    from fsanet_geo.errors import CheckpointError, FsanetError

    if weights is None:
        weights = demo_weights_path()
        if not weights.is_file():
            raise CheckpointError(
                "no --weights given and this install has no packaged demo model: pass --weights CKPT"
            )
        eprint("[yellow]note:[/] using the packaged demo model, trained on synthetic data only; "
               "pass --weights for real detections")
    try:
        from fsanet_geo.model.checkpoint import load_model
    except ImportError as exc:
        raise CheckpointError(f"cannot load {weights}: the model package is not available ({exc})") from exc
    try:
        return load_model(weights, device=device)
    except FsanetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to load is the checkpoint's
        raise CheckpointError(f"weights {weights} do not load: {exc}") from exc


def _run_one(
    scenes: list[Path],
    model: Any,
    out: Path,
    settings: Any,
    previews: dict[Path, Path],
    *,
    keep_crs: bool,
    overwrite: bool,
    context: Any = None,
) -> None:
    """One output file; ``context`` (a :class:`DistContext`) spreads the tiles over torchrun processes."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fsanet_geo.geo.detections import Detections
    from fsanet_geo.geo.distributed_detect import detect_to_file_distributed
    from fsanet_geo.geo.journal import journal_dir
    from fsanet_geo.geo.pipeline import DetectProgress, detect_to_file

    if context is not None and not context.is_main:  # rank 0 reports and writes
        detect_to_file_distributed(scenes, model, out, settings=settings, keep_crs=keep_crs, overwrite=overwrite,
                                   context=context)
        return
    found: dict[int, list[Detections]] = {}

    def keep(scene_index: int, dets: Detections) -> None:
        if scenes[scene_index] in previews:
            found.setdefault(scene_index, []).append(dets)

    started = time.perf_counter()
    first_done: list[int] = []
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
    # Off a terminal (a log file, a pipe) no bar, only the summary line below.
    bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
    task = bar.add_task(out.name, total=None, skipped=0, objects=0, rate="-")
    started_bar: list[bool] = []

    def stop_bar() -> None:
        if started_bar:  # Progress.stop() prints a blank line even when it never started
            started_bar.clear()
            bar.stop()

    def on_progress(p: DetectProgress) -> None:
        if not first_done:
            first_done.append(p.tiles_done)  # resumed tiles do not count towards the rate
            if not bar.disable:  # only once the scenes passed their checks: errors stay one line
                bar.start()
                started_bar.append(True)
        elapsed = max(time.perf_counter() - started, 1e-9)
        rate = (p.tiles_done - first_done[0]) / elapsed
        bar.update(task, total=p.tiles_total, completed=p.tiles_done, skipped=p.tiles_skipped,
                   objects=p.detections, rate=f"{rate:.1f}", description=f"{out.name} ({p.scene})")

    try:
        if context is None:
            summary = detect_to_file(scenes, model, out, settings=settings, progress=on_progress,
                                     keep_crs=keep_crs, overwrite=overwrite, on_detections=keep)
        else:
            summary = detect_to_file_distributed(scenes, model, out, settings=settings, progress=on_progress,
                                                 keep_crs=keep_crs, overwrite=overwrite, on_detections=keep,
                                                 context=context)
            assert summary is not None  # rank 0
    except KeyboardInterrupt:
        stop_bar()
        if journal_dir(out).is_dir():
            eprint(f"finished tiles kept in {journal_dir(out)}: run the same command with --resume to continue")
        raise
    finally:
        stop_bar()
    p = summary.progress
    elapsed = time.perf_counter() - started
    computed = p.tiles_done - summary.resumed_tiles
    per_class = ", ".join(f"{name} {n}" for name, n in p.class_counts.items()) or "none"
    resumed = f", {summary.resumed_tiles} resumed" if summary.resumed_tiles else ""
    eprint(f"{p.detections} objects ({per_class}) in {p.tiles_total} tiles ({p.tiles_skipped} skipped{resumed}), "
           f"{elapsed:.1f} s, {computed / max(elapsed, 1e-9):.1f} tiles/s -> {out}")
    _write_previews(scenes, previews, found, model, settings, overwrite)


def _write_previews(
    scenes: list[Path], previews: dict[Path, Path], found: dict[int, list[Any]], model: Any, settings: Any,
    overwrite: bool,
) -> None:
    from rasterio.errors import NotGeoreferencedWarning

    from fsanet_geo.geo.detections import Detections
    from fsanet_geo.geo.preview import write_preview
    from fsanet_geo.geo.reader import open_scene

    in_channels = getattr(getattr(model, "config", None), "in_channels", None)
    for i, scene in enumerate(scenes):
        if scene not in previews:
            continue
        info = open_scene(scene, bands=settings.bands, in_channels=in_channels)
        with warnings.catch_warnings():
            if info.crs is None:  # already reported by the run; rasterio would repeat it
                warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
            path = write_preview(info, Detections.concat(found.get(i, [])), list(getattr(model, "class_names", [])),
                                 previews[scene], value_range=settings.scale, percentiles=settings.percentiles,
                                 overwrite=overwrite)
        eprint(f"preview -> {path}")
