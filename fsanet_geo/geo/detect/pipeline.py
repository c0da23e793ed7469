"""Streamed, tiled detection over whole scenes: read -> predict -> merge -> georeference.

Background threads read and scale tiles ahead (bounded queue); tiles go to the predictor
in batches; boxes are moved to scene pixels and handed to a :class:`SeamMerger`, which
returns detections as soon as no later tile can change them; those are georeferenced
and written to the sink (or collected). Memory is bounded by the prefetch queue, GDAL's
capped block cache and the merger's waiting detections, not by scene size.

The library never prints: progress goes to a callback as :class:`DetectProgress`.
This module holds the entry points; the rooms behind them: options in
:mod:`~fsanet_geo.geo.settings`, the run and its steps in :mod:`~fsanet_geo.geo.detect.run`,
the predictor call in :mod:`~fsanet_geo.geo.detect.predict`, frames and files in
:mod:`~fsanet_geo.geo.outputs.output`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.outputs.journal import DetectJournal
from fsanet_geo.geo.outputs.output import Sink
from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary, SceneRun
from fsanet_geo.geo.settings import DetectSettings, Predictor

if TYPE_CHECKING:
    import geopandas


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
        scene: a raster file (GeoTIFF, COG, VRT, ...), a URL (``https://``, ``s3://``) or GDAL
            ``/vsi`` path, or a :class:`~fsanet_geo.geo.pixels.remote.NamedLocation` (e.g. a STAC item's asset).
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
    s = (settings or DetectSettings()).with_overrides(
        tile_size=tile_size, overlap=overlap, batch_size=batch_size, bands=bands
    )
    return detect_scenes([scene], predictor, settings=s, progress=progress, sink=sink)


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

    All scenes are opened and checked before any tile is read; scenes in several CRSs give a
    frame in ``settings.crs`` or the first scene's CRS (see :mod:`~fsanet_geo.geo.scene_crs`).
    ``journal`` (see :mod:`fsanet_geo.geo.outputs.journal`) records finished tiles for resuming;
    ``on_detections(scene_index, dets)`` sees each batch of final detections (scene
    pixels), e.g. for a preview. Otherwise as :func:`detect_scene`.
    """
    run = SceneRun.prepare(scenes, predictor, settings or DetectSettings(), progress=progress, sink=sink,
                           journal=journal, on_detections=on_detections)
    run.run_all()
    return run.result_frame()


def check_scenes(
    scenes: Sequence[str | os.PathLike[str]], predictor: Predictor, settings: DetectSettings | None = None
) -> None:
    """Run every check :func:`detect_scenes` makes before reading pixels (settings, scenes, CRS).

    Raises the same :class:`RasterError` / :class:`ConfigError` / :class:`DeviceError`. It does
    not warn (about a scene without CRS accepted by ``allow_no_crs``): the run itself does, once.
    """
    SceneRun.prepare(scenes, predictor, settings or DetectSettings(), warn=False)


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

    The format follows the extension (see :func:`fsanet_geo.geo.outputs.export.open_sink`). The
    output path (format, exists without ``overwrite``, folder missing), the settings and the
    scenes are checked before anything is written; the file appears atomically at the end.
    A journal ``<output>.partial/`` records finished tiles so that ``settings.resume``
    continues an interrupted run; it is removed on success (and on a failure before any
    tile was finished).
    """
    out = check_file_output(output, overwrite=overwrite)
    run = SceneRun.prepare(scenes, predictor, settings or DetectSettings(), progress=progress,
                           on_detections=on_detections)
    with run.writing_to(out, keep_crs=keep_crs, overwrite=overwrite):
        run.run_all()
    return run.summary(out)


def check_file_output(output: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """``output`` as a path, checked for a known format, an existing folder and ``overwrite``."""
    from fsanet_geo.geo.outputs.export import output_format
    from fsanet_geo.io_utils import check_output_path

    output_format(output)
    return check_output_path(output, overwrite=overwrite)
