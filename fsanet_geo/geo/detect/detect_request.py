"""What ``fsanet detect`` was asked (:class:`DetectRequest`) and its checked, planned job
(:func:`prepare_detect`): the options checked against each other, the run's
:class:`~fsanet_geo.geo.settings.DetectSettings` built, the scenes gathered, the outputs planned.

Units: ``tile_size`` and ``overlap`` pixels; ``scale`` raw raster values; ``gsd`` metres per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detect.detect_job import DetectJob, plan_detect_job, world_size
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.option_values import parse_csv

DEFAULT_FORMAT = "gpkg"
"""File format of ``output_dir`` outputs when none is given."""


@dataclass(frozen=True)
class DetectRequest:
    """A detection run as asked; None is "not given".

    Attributes:
        scenes: scene files, URLs or STAC inputs; ``scene_list`` a text file of more.
        output: one vector file for all scenes, or ``output_dir`` one file per scene in
            ``output_format``; ``preview`` a quicklook PNG.
        score_thr: replaces the checkpoint's score threshold for this run.
        bands, classes, scale: the options' comma-separated text (``3,2,1``,
            ``vehicle,ship``, ``MIN,MAX`` or one pair per band); ``scale_from`` a run record
            whose stretch to reuse.
        settings: the other :class:`DetectSettings` fields by name (``tile_size``,
            ``device``, ``gsd``, ...).
    """

    scenes: list[str] = field(default_factory=list)
    scene_list: Path | None = None
    asset: str | None = None
    output: Path | None = None
    output_dir: Path | None = None
    output_format: str | None = None
    preview: Path | None = None
    weights: Path | None = None
    keep_crs: bool = False
    overwrite: bool = False
    skip_bad: bool = False
    nproc: int = 1
    score_thr: float | None = None
    soft_nms: bool = False
    bands: str | None = None
    classes: str | None = None
    scale: str | None = None
    scale_from: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedDetect:
    """A planned job and the notes gathering its scenes gave (e.g. the STAC asset picked)."""

    job: DetectJob
    notes: list[str]


def prepare_detect(request: DetectRequest) -> PreparedDetect:
    """Check ``request``, gather its scenes and plan its outputs; nothing is read or run yet
    beyond the scene list and STAC items.

    Raises:
        ConfigError: ``output`` and ``output_format`` disagree, a bad ``scale`` (or one
            given with ``scale_from``), ``skip_bad`` with several processes, bad settings.
        OutputError, FileOverwriteError: an output that cannot be written.
    """
    from fsanet_geo.geo.detect.scene_list import gather_scenes

    r = request
    if r.output is not None and r.output_format is not None and r.output.suffix.lower() != f".{r.output_format}":
        raise ConfigError(f"-o {r.output.name} and --format {r.output_format} disagree: -o writes the format "
                          f"of its extension; drop --format or name the file {r.output.stem}.{r.output_format}")
    scale = _scale(r.scale, r.scale_from)
    settings = DetectSettings(
        bands=parse_csv(r.bands, int, "--bands"), scale=tuple(scale) if scale else None,
        score_thr=r.score_thr or 0.0, merge_method="gaussian" if r.soft_nms else "hard",
        classes=parse_csv(r.classes, str, "--classes"), **r.settings,
    )
    if r.skip_bad and (r.nproc > 1 or world_size() > 1):
        raise ConfigError("--skip-bad works in one process only: drop it or --nproc")
    gathered = gather_scenes(r.scenes, scene_list=r.scene_list, asset=r.asset)
    job = plan_detect_job(gathered.scenes, settings, output=r.output, output_dir=r.output_dir,
                          file_format=r.output_format or DEFAULT_FORMAT, preview=r.preview, weights=r.weights,
                          keep_crs=r.keep_crs, overwrite=r.overwrite, skip_bad=r.skip_bad,
                          model_score_thr=r.score_thr)
    return PreparedDetect(job, list(gathered.notes))


def _scale(scale: str | None, scale_from: Path | None) -> list[float] | None:
    """The ``--scale`` values (MIN,MAX or one pair per band), or those recorded in ``scale_from``."""
    from fsanet_geo.geo.pixels.stretch import scale_from_record

    values = parse_csv(scale, float, "--scale")
    if values is not None and (len(values) < 2 or len(values) % 2):
        raise ConfigError(f"--scale takes MIN,MAX or one MIN,MAX pair per band, got {scale!r}")
    if scale_from is not None:
        if values is not None:
            raise ConfigError("give --scale or --scale-from, not both")
        values = list(scale_from_record(scale_from))
    return values
