"""The options of a detection run and how tile size and overlap are resolved.

Light on purpose (no numpy, torch or GDAL at import), so that the CLI can show the
defaults in its help without slowing ``fsanet --version``. All sizes are pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from fsanet_geo.errors import ConfigError

if TYPE_CHECKING:
    import torch  # noqa: F401 - named in the Predictor alias

DEFAULT_TILE_SIZE = 800
"""Pixels; the least default tile (a model trained on larger crops tiles at its crop size)."""
DEFAULT_OVERLAP = 64
"""Pixels; AI-TOD objects are under 64 px, so each lies wholly inside some tile."""
OVERLAP_RULE = f"min({DEFAULT_OVERLAP}, tile size // 4)"
"""The default overlap as :func:`resolve_tiling` applies it, in words (for help texts)."""

Predictor = Callable[["torch.Tensor"], list[dict[str, "torch.Tensor"]]]
"""``uint8 Tensor[B, C, T, T] -> [{"boxes": Tensor[N, 4] xyxy tile pixels, "scores": Tensor[N],
"labels": Tensor[N] 0-based}]``; optional ``class_names`` and ``config`` attributes."""


@dataclass
class DetectSettings:
    """Every option of a detection run. Pixel values are scene/tile pixels.

    Attributes:
        tile_size: tile side; None -> ``max(800, the predictor's config.input_size)``.
        overlap: pixels shared by neighbouring tiles; None -> min(64, tile_size // 4).
            Objects up to this size are seen whole in at least one tile.
        batch_size: tiles per predictor call.
        bands: 1-based band indexes (GDAL order, ``[3, 2, 1]``); None -> default choice.
        scale: user range (min, max) mapped to 0..255 for every band, or one (min, max) pair
            per band; None -> the scene's percentiles (see :mod:`~fsanet_geo.geo.pixels.stretch`).
        percentiles: (low, high) per-band percentiles for non-uint8 scenes.
        stretch_to: "model": the percentiles go to the model's training levels (0..255 when it
            has none); "full": to 0 and 255.
        gsd: "auto" (resample to the model's GSD when they differ by > 10%), "native", or
            metres per pixel to resample every scene to.
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
        retry_seconds: how long a remote scene's transient faults (5xx, dropped or truncated
            replies) are retried in all, seconds; None: ``FSANET_RETRY_SECONDS`` or 60.
        skip_unreadable: skip tiles GDAL cannot read (corrupt blocks) and record them in the
            summary and the output's metadata, instead of stopping (GDAL's default).
        aoi: area of interest, a vector file of polygons (any CRS): only tiles intersecting it
            are read, detections whose centre is outside it are dropped; None -> whole scenes.
        crs: the CRS ("EPSG:32633", WKT...) of one output file for scenes in several CRSs;
            None -> the first scene's (see :mod:`~fsanet_geo.geo.scene_crs`).
    """

    tile_size: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    bands: list[int] | None = None
    scale: tuple[float, ...] | None = None
    percentiles: tuple[float, float] = (2.0, 98.0)
    stretch_to: str = "model"
    gsd: str | float = "auto"
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
    skip_unreadable: bool = False
    retry_seconds: float | None = None
    aoi: str | None = None
    crs: str | None = None

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
        if self.retry_seconds is not None and not self.retry_seconds >= 0:
            raise ConfigError(f"the retry bound must be >= 0 seconds, got {self.retry_seconds}")
        if self.read_threads < 1 or (self.prefetch is not None and self.prefetch < 1):
            raise ConfigError("read_threads and prefetch must be >= 1")
        if self.gdal_cache_mb < 1:
            raise ConfigError(f"GDAL cache must be >= 1 MiB, got {self.gdal_cache_mb}")
        if self.scale is not None:
            if len(self.scale) < 2 or len(self.scale) % 2:
                raise ConfigError(f"scale range is MIN,MAX or one MIN,MAX pair per band, got {list(self.scale)}")
            for low, high in zip(*[iter(float(v) for v in self.scale)] * 2):
                if not (math.isfinite(low) and math.isfinite(high) and high > low):
                    raise ConfigError(f"scale range needs MAX > MIN (both finite), got {low:g},{high:g}")
        if self.stretch_to not in ("model", "full"):
            raise ConfigError(f"stretch_to must be 'model' or 'full', got {self.stretch_to!r}")
        parse_gsd_mode(self.gsd)
        if self.crs is not None:
            from fsanet_geo.geo.scene_crs import check_crs

            check_crs(self.crs)
        pct = [float(v) for v in self.percentiles]
        if len(pct) != 2 or not 0.0 <= pct[0] < pct[1] <= 100.0:
            raise ConfigError(f"percentiles must be two values with 0 <= low < high <= 100, got {pct}")

    def with_overrides(self, **overrides: Any) -> DetectSettings:
        """A copy with every override that is not None applied (``bands`` as a list)."""
        s = DetectSettings(**asdict(self))
        for key, value in overrides.items():
            if value is not None:
                setattr(s, key, list(value) if key == "bands" else value)
        return s


def parse_gsd_mode(value: str | float) -> str | float:
    """``"auto"``, ``"native"`` or metres per pixel > 0 (float); :class:`ConfigError` otherwise."""
    if isinstance(value, str) and value.strip().lower() in ("auto", "native"):
        return value.strip().lower()
    try:
        metres = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"gsd takes auto, native or metres per pixel (e.g. 0.5), got {value!r}") from None
    if not (math.isfinite(metres) and metres > 0):
        raise ConfigError(f"gsd in metres must be > 0, got {value!r}")
    return metres


def predictor_config(predictor: Predictor, name: str) -> Any:
    """Attribute ``name`` of the predictor's ``config`` (a :class:`ModelConfig`), or None."""
    config = getattr(predictor, "config", None)
    return getattr(config, name, None) if config is not None else None


def resolve_tiling(settings: DetectSettings, predictor: Predictor) -> tuple[int, int]:
    """(tile_size, overlap) in pixels from the settings, else the predictor's config, else defaults.

    The default overlap is ``min(DEFAULT_OVERLAP, tile_size // 4)`` (:data:`OVERLAP_RULE`).
    """
    tile = settings.tile_size
    if tile is None:
        size = predictor_config(predictor, "input_size")
        if isinstance(size, (tuple, list)):
            size = max(size)
        # Not the training crop: a model trained on 256 px crops reads 800 px tiles as well
        # (a tenth of the tiles, the same objects: the network is fully convolutional).
        tile = max(int(size), DEFAULT_TILE_SIZE) if size else DEFAULT_TILE_SIZE
    overlap = settings.overlap if settings.overlap is not None else min(DEFAULT_OVERLAP, tile // 4)
    if overlap >= tile:
        raise ConfigError(f"overlap ({overlap}) must be smaller than the tile size ({tile})")
    if 2 * overlap > tile:  # pixels read four times or more, results unlike the model's
        raise ConfigError(f"overlap ({overlap}) is over half the tile size ({tile}): "
                          f"use at most --overlap {tile // 2}, or a larger --tile-size")
    return tile, overlap
