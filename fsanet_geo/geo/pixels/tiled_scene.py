"""A scene opened for detection: checked (bands, CRS), cut into tile windows (at the model's
GSD when resampled, only those touching an area of interest)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

from fsanet_geo.errors import NotGeoreferencedWarning, RasterError
from fsanet_geo.geo.pixels.aoi import PixelArea, aoi_windows
from fsanet_geo.geo.pixels.gsd import GsdMatch, scene_gsd_match, zoomed_tiling
from fsanet_geo.geo.pixels.reader import SceneInfo, open_scene
from fsanet_geo.geo.pixels.remote import location_name
from fsanet_geo.geo.scene_crs import layer_crs
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.tiling import tile_windows
from fsanet_geo.geo.windows import TileWindow


@dataclass
class TiledScene:
    """An opened, checked scene and its tile windows (tile ``i`` is ``windows[i]``).

    ``transform`` maps scene pixels to CRS units (the identity for a scene without CRS);
    ``gsd`` says whether tiles are read resampled to the model's GSD (windows are scene pixels).
    ``area``: the area of interest in scene pixels (``windows`` are then only those touching it).
    """

    info: SceneInfo
    windows: list[TileWindow]
    transform: Affine
    name: str
    gsd: GsdMatch | None = None
    area: PixelArea | None = None

    @property
    def crs(self) -> CRS | None:
        return self.info.crs


def open_tiled_scenes(
    paths: Sequence[str | os.PathLike[str]],
    settings: DetectSettings,
    tile_size: int,
    overlap: int,
    in_channels: int | None,
    *,
    warn: bool = True,
    model_gsd: float | None = None,
    model_bands: Sequence[int] | None = None,
) -> list[TiledScene]:
    """Open and check every scene (bands, CRS) and cut it into tiles.

    A scene without CRS is refused unless ``settings.allow_no_crs``; then it warns
    (:class:`NotGeoreferencedWarning`) when ``warn``, and its outputs are in pixels; it cannot
    be mixed with georeferenced scenes. ``settings.gsd`` and ``model_gsd`` (metres) decide a
    resampling; tiles then cover ``tile_size`` model pixels, and a :class:`~fsanet_geo.errors.Notice`
    says so once (when ``warn``). Without ``settings.bands``, a scene is read in the bands the model
    was trained on (``model_bands``) when it has them. With ``settings.aoi`` only the tiles touching the area are kept,
    and a scene the area misses is left out (a :class:`SceneSkippedWarning` when ``warn``).
    """
    scenes = []
    for p in paths:
        info = _open(p, settings.bands, model_bands, in_channels)
        transform = info.transform
        if info.crs is None:
            if not settings.allow_no_crs:
                raise RasterError(f"{info.path} has no CRS: outputs would not be georeferenced (use --allow-no-crs)")
            if warn:
                warnings.warn(
                    f"{info.path} has no CRS: detections are in pixel coordinates",
                    NotGeoreferencedWarning,
                    stacklevel=4,
                )
            transform = Affine.identity()
        match = scene_gsd_match(info, settings.gsd, model_gsd, warn=warn)
        windows = tile_windows(info.height, info.width, *zoomed_tiling(tile_size, overlap, match.zoom))
        area = None
        if settings.aoi is not None:
            windows, area = aoi_windows(settings.aoi, info, windows, warn=warn)
            if not windows:
                continue
        scenes.append(TiledScene(info, windows, transform, location_name(p), match, area))
    layer_crs([s.crs for s in scenes], crs_bound=False)  # refuses scenes with and without CRS together
    return scenes



def _open(path: str | os.PathLike[str], bands: Sequence[int] | None, model_bands: Sequence[int] | None,
          in_channels: int | None) -> SceneInfo:
    """:func:`open_scene` in the user's ``bands``, else in the bands the model was trained on
    when the scene has them all, else in the default choice."""
    if bands is None and model_bands is not None:
        try:
            return open_scene(path, bands=model_bands, in_channels=in_channels)
        except RasterError as exc:
            if "out of range" not in str(exc):
                raise
    return open_scene(path, bands=bands, in_channels=in_channels)
