"""A detection job: several scenes into one or more vector files, with quicklook previews.

What ``fsanet detect`` asks for, as a library call: :func:`plan_detect_job` decides and
checks every output (one file for all scenes, or one per scene in a folder) and preview
before any work; :func:`run_detect_job` loads the model (the packaged demo model when no
weights are given), checks every scene, then runs one :func:`~fsanet_geo.geo.detect.pipeline.detect_to_file`
per output and writes the previews. Under ``torchrun`` (``WORLD_SIZE`` > 1) every process
runs the same job and the tiles are spread over them
(:mod:`~fsanet_geo.geo.detect.distributed_detect`); only rank 0 writes and reports.
:func:`check_detect_job` makes the checks a launcher runs before starting those processes.

The library never prints: what a job does is reported to a :class:`DetectJobEvents`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fsanet_geo.device import resolve_device
from fsanet_geo.distributed import DistContext, agreed
from fsanet_geo.errors import CheckpointError, ConfigError, FsanetError, Notice, OutputError, RasterError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.detect.distributed_detect import detect_to_file_distributed, init_detect_context
from fsanet_geo.geo.outputs.export import output_format
from fsanet_geo.geo.outputs.journal import journal_dir
from fsanet_geo.geo.pixels.retry import retry_bound
from fsanet_geo.geo.detect.job_model import apply_score_threshold, checkpoint_stand_in, uncalibrated_threshold_note
from fsanet_geo.geo.detect.pipeline import check_scenes, detect_to_file
from fsanet_geo.geo.pixels.remote import SceneInput, location_stem
from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary
from fsanet_geo.geo.settings import DetectSettings, Predictor
from fsanet_geo.io_utils import check_output_path


def demo_weights_path() -> Path:
    """The packaged demo checkpoint (may not exist in this install)."""
    import fsanet_geo

    return Path(fsanet_geo.__file__).resolve().parent / "weights" / "demo.safetensors"


def process_rank() -> int:
    """This process's rank under torchrun (``RANK``), 0 otherwise; rank 0 writes and reports."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Processes under torchrun (``WORLD_SIZE``), 1 otherwise."""
    from fsanet_geo.distributed import launched_world_size

    return launched_world_size()


class DetectJobEvents(Protocol):
    """What a running job reports; only the process that writes (rank 0) gets more than ``demo_model``."""

    def demo_model(self) -> None:
        """No weights were given: the packaged demo model (synthetic training only) is used."""

    def output_started(self, output: Path) -> None:
        """The run writing ``output`` starts (its scenes passed their checks)."""

    def progress(self, output: Path, event: DetectProgress) -> None:
        """Progress of the run writing ``output``."""

    def output_finished(self, summary: DetectSummary) -> None:
        """``summary.output`` is written."""

    def preview_written(self, path: Path) -> None:
        """A quicklook PNG is written."""

    def scene_skipped(self, scene: str, reason: str) -> None:
        """``scene`` is set aside before the run (see :func:`~fsanet_geo.geo.detect.scene_list.screen_scenes`)."""


class _Silent:
    """Events nobody listens to."""

    def demo_model(self) -> None:
        pass

    def output_started(self, output: Path) -> None:
        pass

    def progress(self, output: Path, event: DetectProgress) -> None:
        pass

    def output_finished(self, summary: DetectSummary) -> None:
        pass

    def preview_written(self, path: Path) -> None:
        pass

    def scene_skipped(self, scene: str, reason: str) -> None:
        pass


@dataclass(frozen=True)
class DetectJob:
    """A checked plan: ``outputs`` maps a group of scenes to its vector file, ``previews`` a
    scene to its PNG; ``weights`` None means the packaged demo model."""

    scenes: list[SceneInput]
    outputs: dict[tuple[SceneInput, ...], Path]
    previews: dict[SceneInput, Path]
    settings: DetectSettings
    weights: Path | None = None
    keep_crs: bool = False
    overwrite: bool = False
    skip_bad: bool = False
    model_score_thr: float | None = None
    """Replaces the loaded model's own score threshold for this run; None keeps it."""


def plan_detect_job(
    scenes: list[SceneInput],
    settings: DetectSettings,
    *,
    output: Path | None = None,
    output_dir: Path | None = None,
    file_format: str = "gpkg",
    preview: Path | None = None,
    weights: Path | None = None,
    keep_crs: bool = False,
    overwrite: bool = False,
    skip_bad: bool = False,
    model_score_thr: float | None = None,
) -> DetectJob:
    """Plan the outputs (all scenes into ``output``, or one ``<stem>.<file_format>`` per scene in
    ``output_dir``) and previews (``preview``, or ``<preview stem>_<scene stem>.png`` for several
    scenes); check them (rank 0 only) and the settings before any work. ``skip_bad``: scenes
    that fail to open are set aside when the job runs, instead of stopping it.

    Raises :class:`ConfigError` / :class:`OutputError` / :class:`FileOverwriteError`.
    """
    outputs = _plan_outputs(scenes, output, output_dir, file_format)
    previews = _plan_previews(preview, scenes) if preview is not None else {}
    if process_rank() == 0:
        for path in [*outputs.values(), *previews.values()]:
            check_output_path(path, overwrite=overwrite)
    settings.validate()
    return DetectJob(list(scenes), outputs, previews, settings, weights, keep_crs, overwrite, skip_bad,
                     model_score_thr)


def _plan_outputs(
    scenes: list[SceneInput], output: Path | None, output_dir: Path | None, file_format: str
) -> dict[tuple[SceneInput, ...], Path]:
    if (output is None) == (output_dir is None):
        raise ConfigError("give exactly one of -o/--output FILE or --output-dir DIR")
    if output is not None:
        output_format(output)
        return {tuple(scenes): output}
    assert output_dir is not None
    if not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} does not exist")
    stems = [location_stem(s) for s in scenes]
    if len(set(stems)) != len(stems):
        raise ConfigError("two scenes share a file name: write them into one file with -o instead")
    outputs = {(s,): output_dir / f"{location_stem(s)}.{file_format}" for s in scenes}
    for path in outputs.values():
        output_format(path)
    return outputs


def _plan_previews(preview: Path, scenes: list[SceneInput]) -> dict[SceneInput, Path]:
    if preview.suffix.lower() != ".png":
        raise ConfigError(f"--preview writes a PNG: give a .png path, got {preview}")
    if len(scenes) == 1:
        return {scenes[0]: preview}
    return {s: preview.with_name(f"{preview.stem}_{location_stem(s)}{preview.suffix}") for s in scenes}


def load_detector(weights: Path | None, device: str, events: DetectJobEvents | None = None) -> Any:
    """The model of checkpoint ``weights`` on ``device`` (BatchNorm folded), an ONNX Runtime
    predictor for a ``.onnx`` file; None -> the packaged demo model.

    Raises :class:`CheckpointError` for weights that do not load or a missing demo model.
    """
    if weights is None:
        weights = demo_weights_path()
        if not weights.is_file():
            raise CheckpointError(
                "no --weights given and this install has no packaged demo model: pass --weights CKPT"
            )
        if events is not None:
            events.demo_model()
    if weights.suffix.lower() == ".onnx":
        from fsanet_geo.geo.detect.onnx_predictor import OnnxPredictor

        return OnnxPredictor(weights, device=device)
    try:
        from fsanet_geo.model.files.checkpoint import load_inference_model
    except ImportError as exc:
        raise CheckpointError(f"cannot load {weights}: the model package is not available ({exc})") from exc
    try:
        model = load_inference_model(weights, device=device)
    except FsanetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to load is the checkpoint's
        raise CheckpointError(f"weights {weights} do not load: {exc}") from exc
    return model


def check_scenes_first(job: DetectJob, settings: DetectSettings | None = None) -> None:
    """The scene checks that need only the checkpoint's metadata (no CRS, band count, classes),
    made with ``settings`` (default the job's) before the model loads, so that such an error
    does not wait for it."""
    stand_in = checkpoint_stand_in(job.weights or demo_weights_path())
    if stand_in is not None:
        check_scenes(job.scenes, stand_in, settings or job.settings)


def check_detect_job(job: DetectJob, nproc: int, events: DetectJobEvents | None = None) -> None:
    """The checks before launching ``nproc`` processes for ``job``, made here on the CPU: one
    GPU per process when the device is CUDA, the model loads, every scene passes."""
    if resolve_device(job.settings.device).type == "cuda" and nproc > _gpu_count():
        raise ConfigError(f"--nproc {nproc} needs one GPU per process but this machine has {_gpu_count()}")
    cpu = dataclasses.replace(job.settings, device="cpu", half=False)
    check_scenes_first(job, cpu)
    check_scenes(job.scenes, load_detector(job.weights, "cpu", events), cpu)


def run_detect_job(job: DetectJob, events: DetectJobEvents | None = None) -> list[DetectSummary]:
    """Load the model, check every scene before any output is started, write every output and preview.

    Under torchrun every process calls it; a failure on any process stops all of them
    (:class:`DistributedError` on those that did not fail). Returns the summaries (rank 0;
    an empty list on the others).
    """
    with retry_bound(job.settings.retry_seconds):  # scene opening retries too, not only tile reads
        return _run_detect_job(job, events or _Silent())


def _run_detect_job(job: DetectJob, events: DetectJobEvents) -> list[DetectSummary]:
    """:func:`run_detect_job` within the job's retry bound."""
    if world_size() > 1:
        return _run_distributed(job, events)
    stand_in = checkpoint_stand_in(job.weights or demo_weights_path())  # metadata only: checks come first
    if stand_in is not None:
        job = usable_job(job, stand_in, events)
        check_scenes(job.scenes, stand_in, job.settings)
    model = load_detector(job.weights, str(resolve_device(job.settings.device)), events)
    apply_score_threshold(model, job.model_score_thr)
    if stand_in is None:  # e.g. an ONNX file: the loaded model is the first that can check
        job = usable_job(job, model, events)
        check_scenes(job.scenes, model, job.settings)
    note = uncalibrated_threshold_note(job.weights, stand_in) if job.weights and job.model_score_thr is None else None
    notes = [note] if note else []  # said with the first finished tile: a refused run stays one line
    return [_run_output(job, list(group), model, out, job.settings, events, notes=notes)
            for group, out in job.outputs.items()]


def usable_job(job: DetectJob, model: Predictor, events: DetectJobEvents) -> DetectJob:
    """``job`` without the scenes :func:`~fsanet_geo.geo.detect.scene_list.screen_scenes` sets aside (each
    reported to ``events``), and without the outputs left with no scene; :class:`RasterError` if none is left."""
    from fsanet_geo.geo.detect.scene_list import screen_scenes

    if not job.skip_bad and job.settings.aoi is None:
        return job  # nothing to set aside: check_scenes makes every check, settings first
    kept, skipped = screen_scenes(job.scenes, model, job.settings, skip_bad=job.skip_bad)
    for s in skipped:
        events.scene_skipped(s.scene, s.reason)
    if not skipped:
        return job
    if not kept:
        raise RasterError(f"no usable scene: all {len(skipped)} were skipped")
    outputs = {tuple(s for s in group if s in kept): out for group, out in job.outputs.items()}
    return dataclasses.replace(job, scenes=kept, outputs={g: out for g, out in outputs.items() if g})


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _run_distributed(job: DetectJob, events: DetectJobEvents) -> list[DetectSummary]:
    """Under torchrun: every process loads the model on its device and checks every scene
    (a failure on any process stops all); then each output is one distributed run."""
    ctx = init_detect_context(job.settings.device)
    try:
        settings = dataclasses.replace(job.settings, device=str(ctx.device))

        def check() -> Any:
            model = load_detector(job.weights, str(ctx.device), events)
            apply_score_threshold(model, job.model_score_thr)
            check_scenes(job.scenes, model, settings)
            return model

        model = agreed(ctx, check)
        summaries = [_run_output(job, list(group), model, out, settings, events, ctx)
                     for group, out in job.outputs.items()]
        return [s for s in summaries if s is not None]
    finally:
        ctx.close()


def _run_output(
    job: DetectJob,
    scenes: list[SceneInput],
    model: Predictor,
    out: Path,
    settings: DetectSettings,
    events: DetectJobEvents,
    context: DistContext | None = None,
    notes: list[str] | None = None,
) -> DetectSummary | None:
    """One output file (and its scenes' previews); ``context`` spreads the tiles over torchrun processes;
    ``notes`` are issued (and emptied) at the first progress event, once the run has started."""
    common: dict[str, Any] = {"settings": settings, "keep_crs": job.keep_crs, "overwrite": job.overwrite}
    if context is not None and not context.is_main:  # rank 0 reports and writes
        detect_to_file_distributed(scenes, model, out, context=context, **common)
        return None
    found: dict[int, list[Detections]] = {}

    def keep(scene_index: int, dets: Detections) -> None:
        if scenes[scene_index] in job.previews:
            found.setdefault(scene_index, []).append(dets)

    def progress(event: DetectProgress) -> None:
        while notes:
            warnings.warn(notes.pop(0), Notice, stacklevel=2)
        events.progress(out, event)

    events.output_started(out)
    if context is None:
        try:
            summary = detect_to_file(scenes, model, out, progress=progress, on_detections=keep, **common)
        except RasterError as exc:  # e.g. a remote tile that cannot be fetched: say how to go on
            if not journal_dir(out).is_dir():
                raise
            raise RasterError(f"{exc} (finished tiles kept: run the same command with --resume)") from exc
    else:
        summary = detect_to_file_distributed(scenes, model, out, progress=progress, on_detections=keep,
                                             context=context, **common)
        assert summary is not None  # rank 0
    events.output_finished(summary)
    _write_previews(job, scenes, found, model, events)
    return summary


def _write_previews(
    job: DetectJob, scenes: list[SceneInput], found: dict[int, list[Detections]], model: Predictor, events: DetectJobEvents
) -> None:
    from rasterio.errors import NotGeoreferencedWarning

    from fsanet_geo.geo.outputs.output_faults import write_faults
    from fsanet_geo.geo.outputs.preview import write_preview
    from fsanet_geo.geo.pixels.reader import open_scene

    s = job.settings
    in_channels = getattr(getattr(model, "config", None), "in_channels", None)
    for i, scene in enumerate(scenes):
        if scene not in job.previews:
            continue
        info = open_scene(scene, bands=s.bands, in_channels=in_channels)
        with warnings.catch_warnings():
            if info.crs is None:  # already reported by the run; rasterio would repeat it
                warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
            with write_faults(job.previews[scene], lambda: None):  # a full disk: one line naming the PNG
                path = write_preview(info, Detections.concat(found.get(i, [])),
                                     list(getattr(model, "class_names", [])), job.previews[scene],
                                     value_range=s.scale, percentiles=s.percentiles, overwrite=job.overwrite)
        events.preview_written(path)
