"""The area a map-space evaluation scores: where both layers could hold objects.

Detections of a crop scored against a whole scene's truth would count every object outside
the crop as missed. So the scored area is, in order of preference:

1. ``--aoi FILE`` (polygons in any CRS), cut to the detections' scene footprint when known;
2. the detections' scene footprint, from the ``OUTPUT.run.json`` record ``fsanet detect``
   writes beside its output (the scenes' raster bounds, when the scene files are readable);
3. the intersection of the two layers' extents, when it covers under :data:`EXTENT_SHARE`
   of the truth's extent: a smaller gap is more likely objects missed (or found) near the
   scene's edge than another area, and counts.

An object is inside when its box centre is (the rule of ``fsanet detect --aoi``). All
coordinates are in the working CRS (its units: metres for UTM; pixels for pixel layers).
Letters: N = boxes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.outputs.run_record import record_path

EXTENT_SHARE = 0.5
"""Extents that share less than this part of the truth's extent are scored on the common area only."""

Extent = tuple[float, float, float, float]
"""(x_min, y_min, x_max, y_max), working-CRS units."""


@dataclass
class ScoredArea:
    """Where the evaluation counted objects.

    Attributes:
        source: ``aoi``, ``footprint`` or ``common extent``.
        geometry: the area (a shapely geometry in working-CRS units).
        truth_extent, detections_extent: the layers' extents before the cut (None for an empty layer).
        truth_outside, detections_outside: features left out, centred outside the area.
    """

    source: str
    geometry: Any
    truth_extent: Extent | None
    detections_extent: Extent | None
    truth_outside: int = 0
    detections_outside: int = 0

    @property
    def extent(self) -> Extent:
        """The scored area's bounding box."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "extent": list(self.extent),
                "truth_extent": _listed(self.truth_extent), "detections_extent": _listed(self.detections_extent),
                "truth_outside": self.truth_outside, "detections_outside": self.detections_outside}


def _listed(extent: Extent | None) -> list[float] | None:
    return None if extent is None else [float(v) for v in extent]


def extent_of(boxes: np.ndarray) -> Extent | None:
    """The bounding box of boxes [N, 4] (xyxy); None when N = 0."""
    if len(boxes) == 0:
        return None
    return (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))


def scored_area(
    gt_boxes: np.ndarray, dt_boxes: np.ndarray, crs: Any, detections: Path, aoi: str | None
) -> ScoredArea | None:
    """The area to score (see the module), None for everything.

    Args:
        gt_boxes, dt_boxes: float [M, 4] / [N, 4] xyxy, working-CRS units.
        crs: the working CRS (pyproj), None for pixel layers.
        detections: the detections file (its run record is looked up beside it).
        aoi: an area-of-interest vector file, or None.
    """
    truth, found = extent_of(gt_boxes), extent_of(dt_boxes)
    footprint = scene_footprint(detections, crs) if crs is not None else None
    if aoi is not None:
        area = aoi_geometry(aoi, crs)
        if footprint is not None:
            area = shapely.intersection(area, footprint)
        return ScoredArea("aoi", area, truth, found)
    if footprint is not None:
        return ScoredArea("footprint", footprint, truth, found)
    if truth is None or found is None:
        return None
    truth_box, common = shapely.box(*truth), shapely.intersection(shapely.box(*truth), shapely.box(*found))
    if truth_box.area <= 0 or common.area >= EXTENT_SHARE * truth_box.area:
        return None
    return ScoredArea("common extent", common, truth, found)


def centred_in(area: ScoredArea, boxes: np.ndarray) -> np.ndarray:
    """bool [N]: whether each box (xyxy, working CRS) has its centre in the area (boundary included)."""
    if len(boxes) == 0:
        return np.zeros(0, bool)
    shapely.prepare(area.geometry)
    return shapely.intersects_xy(area.geometry, (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2)


def aoi_geometry(path: str, crs: Any) -> Any:
    """The polygons of area-of-interest file ``path`` in the working ``crs``."""
    import geopandas

    from fsanet_geo.geo.pixels.aoi import load_aoi

    if crs is None:
        raise ConfigError(f"--aoi {path} needs georeferenced layers; the truth and detections have no CRS")
    area = load_aoi(path)
    return geopandas.GeoSeries([area.geometry], crs=area.crs).to_crs(crs).iloc[0]


def scene_footprint(detections: Path, crs: Any) -> Any | None:
    """The union of the scenes' raster bounds named in the run record beside ``detections``, in
    ``crs``; None without a record or when a scene file cannot be opened."""
    path = record_path(detections)
    try:
        scenes = json.loads(path.read_text())["scenes"]
        paths = [Path(s["path"]) for s in scenes]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    parts = [_raster_bounds(p, crs) for p in paths]
    if not parts or any(p is None for p in parts):
        return None
    return shapely.union_all(parts)


def _raster_bounds(path: Path, crs: Any) -> Any | None:
    """The outline of raster ``path`` (its full affine's corners, edges densified) in ``crs``."""
    import geopandas
    import rasterio

    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                return None
            t, w, h = src.transform, src.width, src.height
            outline = shapely.Polygon([t @ (0, 0), t @ (w, 0), t @ (w, h), t @ (0, h)])
            dense = shapely.segmentize(outline, max(outline.length / 256, 1e-9))
            return geopandas.GeoSeries([dense], crs=src.crs.to_wkt()).to_crs(crs).iloc[0]
    except Exception:  # noqa: BLE001 - the footprint is optional: the extents are used instead
        return None
