"""An area of interest: polygons in any CRS, brought into each scene's pixel grid.

:func:`load_aoi` reads a vector file (GeoPackage, GeoJSON, Shapefile, ...) of one or more
polygons with geopandas; :meth:`AreaOfInterest.in_scene` reprojects them to a scene's CRS
(pyproj, edges densified first) and maps them through the inverse of the scene's full affine
transform (rotation and shear included) into scene pixels, where :class:`PixelArea` picks
the tile windows that intersect the area and the detections whose centre lies in it.

Letters: K = tile windows, N = detections. Pixel coordinates are pixel edges: x = column,
y = row.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import shapely.affinity
from affine import Affine

from fsanet_geo.errors import ConfigError, RasterError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.pixels.remote import display_location
from fsanet_geo.geo.windows import TileWindow

if TYPE_CHECKING:
    from fsanet_geo.geo.pixels.reader import SceneInfo

DENSIFY_STEPS = 64
"""AOI edges are split into pieces of at most 1/64 of the AOI's extent before reprojection."""


class SceneSkippedWarning(UserWarning):
    """A scene is left out of a run (e.g. the area of interest misses it)."""


@dataclass(frozen=True)
class PixelArea:
    """An area of interest in one scene's pixel coordinates (a shapely (Multi)Polygon)."""

    geometry: Any

    def windows(self, windows: list[TileWindow]) -> list[TileWindow]:
        """The windows [K] that share area with the AOI (touching its boundary only is not enough), in order."""
        if not windows:
            return []
        w = np.asarray([tuple(x) for x in windows], np.float64)
        boxes = shapely.box(w[:, 1], w[:, 0], w[:, 1] + w[:, 3], w[:, 0] + w[:, 2])
        shapely.prepare(self.geometry)
        hit = shapely.intersects(self.geometry, boxes) & ~shapely.touches(self.geometry, boxes)
        return [win for win, h in zip(windows, hit) if h]

    def keep_inside(self, dets: Detections) -> Detections:
        """The detections whose box centre lies in the area (its boundary included)."""
        if len(dets) == 0:
            return dets
        cx = (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2
        cy = (dets.boxes[:, 1] + dets.boxes[:, 3]) / 2
        shapely.prepare(self.geometry)
        return dets.select(shapely.intersects_xy(self.geometry, cx, cy))


@dataclass(frozen=True)
class AreaOfInterest:
    """The union of the polygons of an AOI file, in the file's CRS (``crs``: a pyproj CRS)."""

    geometry: Any
    crs: Any
    source: str

    def in_scene(self, crs: Any, transform: Affine) -> PixelArea:
        """The area in the pixels of a scene with CRS ``crs`` and pixel-edge -> CRS ``transform``."""
        import geopandas

        if crs is None:
            raise RasterError(f"--aoi {self.source} needs georeferenced scenes; a scene has no CRS")
        minx, miny, maxx, maxy = self.geometry.bounds
        step = max(maxx - minx, maxy - miny) / DENSIFY_STEPS
        dense = shapely.segmentize(self.geometry, step) if step > 0 else self.geometry
        in_crs = geopandas.GeoSeries([dense], crs=self.crs).to_crs(crs.to_wkt() if hasattr(crs, "to_wkt") else crs).iloc[0]
        inv = ~transform
        pixels = shapely.affinity.affine_transform(in_crs, [inv.a, inv.b, inv.d, inv.e, inv.c, inv.f])
        return PixelArea(shapely.make_valid(pixels))


def aoi_windows(
    aoi: str, info: SceneInfo, windows: list[TileWindow], *, warn: bool = True
) -> tuple[list[TileWindow], PixelArea]:
    """The ``windows`` of scene ``info`` touching the area of interest of file ``aoi``, and the
    area in the scene's pixels; a scene the area misses warns (:class:`SceneSkippedWarning`) when ``warn``."""
    area = load_aoi(aoi).in_scene(info.crs, info.transform)
    kept = area.windows(windows)
    if not kept and warn:
        warnings.warn(f"skipped {display_location(info.path)}: outside the area of interest", SceneSkippedWarning,
                      stacklevel=4)
    return kept, area


def load_aoi(path: str | os.PathLike[str]) -> AreaOfInterest:
    """Read the polygons of a vector file as one area (cached while the file is unchanged).

    Raises:
        ConfigError: missing or unreadable file, several layers, no CRS, or no polygon in it.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"area of interest {p} does not exist")
    stat = p.stat()
    return _load(str(p), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int) -> AreaOfInterest:
    import geopandas
    import pyogrio

    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
        if len(layers) > 1:  # GDAL would read the first one: the wrong area would go unnoticed
            raise ConfigError(f"area of interest {path} holds {len(layers)} layers ({', '.join(layers)}): "
                              f"give a file holding the area's layer only (e.g. ogr2ogr area.gpkg {path} {layers[0]})")
        frame = geopandas.read_file(path)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read failure is the file's
        first = str(exc).strip().splitlines()
        raise ConfigError(f"cannot read area of interest {path}: {first[0] if first else type(exc).__name__}") from exc
    if frame.crs is None:
        raise ConfigError(f"area of interest {path} has no CRS")
    geoms = frame.geometry[frame.geometry.notna() & ~frame.geometry.is_empty]
    polygons = geoms[geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polygons) == 0:
        raise ConfigError(f"area of interest {path} holds no polygon")
    if len(polygons) != len(geoms):
        raise ConfigError(f"area of interest {path} holds {len(geoms) - len(polygons)} geometries that are not "
                          "polygons (points and lines have no area)")
    return AreaOfInterest(shapely.union_all(shapely.make_valid(polygons.to_numpy())), frame.crs, path)
