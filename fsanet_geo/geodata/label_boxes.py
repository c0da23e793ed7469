"""Label geometries -> axis-aligned boxes in a scene's pixels.

Each feature's vertices are reprojected from the layer's CRS to the scene's with pyproj (the
library geopandas' ``to_crs`` calls; ``always_xy``, so x = easting / longitude), then mapped
through the exact inverse of the scene's full affine (rotation and shear included), and the
feature's box is the min / max of its mapped vertices: a multi-part feature gives one box of
all its parts. Reprojection bends straight edges, so when the CRSs differ, the edges of a
feature longer than :data:`DENSIFY_ABOVE_PX` are split into pieces of at most
1/:data:`LABEL_DENSIFY_STEPS` of its extent and mapped again. Measured against a 20,000-point
outline (a lon/lat rectangle across UTM's central meridian, where the bend is outward): a
16 px object at 0.5 m is within 1.4e-6 px of its exact box from its corners alone, a 32 px one
within ~5e-6 px (the error grows with the square of the size); densified, an 800 m (1,600 px)
one is within 2.5e-6 px, against 1.3e-2 px from its corners.

Points become squares of ``point_box`` metres centred on the point, built in the scene's CRS:
in a projected CRS the side is converted to its linear unit (US survey feet included, from
the CRS's unit factor, as :mod:`fsanet_geo.geo.pixels.gsd` does); in a geographic CRS the square's
half sides are geodesic distances east, west, north and south of the point on the CRS's
ellipsoid (pyproj ``Geod.fwd``), so a 4 m box is 4 m at any latitude.

Letters: F = features, P = vertices. Pixel coordinates are pixel edges: x = column, y = row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from affine import Affine

from fsanet_geo.errors import ConfigError

LABEL_DENSIFY_STEPS = 8
"""Polygon / line edges are split into pieces of at most 1/8 of the feature's extent before reprojection."""

DENSIFY_ABOVE_PX = 32.0
"""Only features whose box (from their vertices) is longer than this, pixels, are densified."""

MAPPED, EMPTY, POINT_REFUSED = 0, 1, 2
"""Per-feature status codes of :func:`pixel_boxes`."""


def pixel_boxes(
    geometries: np.ndarray,
    layer_crs: Any,
    scene_crs: Any,
    transform: Affine,
    point_box: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of ``geometries`` in the pixels of a scene.

    Args:
        geometries: shapely geometries [F] (None allowed) in ``layer_crs``.
        layer_crs: the layer's CRS (pyproj or anything pyproj reads), None when it has none.
        scene_crs: the scene's CRS (rasterio or pyproj), None when it has none; both None: the
            coordinates are taken as the scene's own (its transform's space).
        transform: the scene's pixel-edge -> CRS affine.
        point_box: side of the square drawn around points, metres; None refuses points.

    Returns:
        boxes: float64 [F, 4] xyxy pixel edges, NaN where not mapped (non-finite where the
            reprojection failed, e.g. a feature outside the projection's domain).
        status: int8 [F]: :data:`MAPPED`, :data:`EMPTY` (no geometry) or :data:`POINT_REFUSED`.
    """
    geoms = np.asarray(geometries, dtype=object)
    n = len(geoms)
    boxes = np.full((n, 4), np.nan)
    status = np.full(n, MAPPED, np.int8)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    status[missing] = EMPTY
    dims = np.where(missing, -1, shapely.get_dimensions(np.where(missing, None, geoms)))
    is_point = dims == 0
    if point_box is None:
        status[is_point] = POINT_REFUSED
    elif not point_box > 0:
        raise ConfigError(f"--point-box must be a positive side in metres, not {point_box}")
    if not (status == MAPPED).any():
        return boxes, status
    to_scene = _transformer(layer_crs, scene_crs)
    shapes = np.flatnonzero((status == MAPPED) & ~is_point)
    points = np.flatnonzero((status == MAPPED) & is_point)
    if len(shapes):
        xy, idx = shapely.get_coordinates(geoms[shapes], return_index=True)
        _fill(boxes, shapes[idx], _apply(to_scene, xy), transform)
        if to_scene is not None:  # reprojection bends edges: map the larger features' edges densely
            side = np.fmax(boxes[shapes, 2] - boxes[shapes, 0], boxes[shapes, 3] - boxes[shapes, 1])
            large = shapes[~(side <= DENSIFY_ABOVE_PX)]
            if len(large):
                xy, idx = shapely.get_coordinates(_densify(geoms[large]), return_index=True)
                _fill(boxes, large[idx], _apply(to_scene, xy), transform)
    if len(points):
        assert point_box is not None
        xy, idx = shapely.get_coordinates(geoms[points], return_index=True)
        corners = _square_corners(_apply(to_scene, xy), float(point_box), scene_crs)
        _fill(boxes, np.repeat(points[idx], 4), corners.reshape(-1, 2), transform)
    return boxes, status


def _fill(boxes: np.ndarray, index: np.ndarray, xy: np.ndarray, transform: Affine) -> None:
    """Set ``boxes[f]`` to the pixel box of the vertices ``xy`` [P, 2] (scene CRS) whose ``index`` [P] is f
    (every vertex of each feature named)."""
    inv = ~transform
    cols = inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c
    rows = inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f
    order = np.argsort(index, kind="stable")
    index, cols, rows = index[order], cols[order], rows[order]
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    owners = index[starts]
    boxes[owners, 0] = np.minimum.reduceat(cols, starts)
    boxes[owners, 1] = np.minimum.reduceat(rows, starts)
    boxes[owners, 2] = np.maximum.reduceat(cols, starts)
    boxes[owners, 3] = np.maximum.reduceat(rows, starts)


def _transformer(layer_crs: Any, scene_crs: Any) -> Any:
    """A pyproj transformer layer -> scene (``always_xy``), None when no reprojection is needed."""
    if layer_crs is None or scene_crs is None:
        return None
    from pyproj import CRS, Transformer

    src, dst = CRS.from_user_input(layer_crs), _pyproj_crs(scene_crs)
    if src == dst:
        return None
    return Transformer.from_crs(src, dst, always_xy=True)


def _pyproj_crs(crs: Any) -> Any:
    from pyproj import CRS

    return CRS.from_wkt(crs.to_wkt()) if hasattr(crs, "to_wkt") and not isinstance(crs, CRS) else CRS(crs)


def _apply(transformer: Any, xy: np.ndarray) -> np.ndarray:
    """Vertices [P, 2] through ``transformer`` (None: unchanged)."""
    if transformer is None or len(xy) == 0:
        return xy
    x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
    return np.column_stack([x, y])


def _densify(geoms: np.ndarray) -> np.ndarray:
    """Edges split into pieces of at most extent / :data:`LABEL_DENSIFY_STEPS` (extent: larger bound side)."""
    bounds = shapely.bounds(geoms)
    extent = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
    step = np.where(extent > 0, extent / LABEL_DENSIFY_STEPS, np.inf)
    return shapely.segmentize(geoms, step)


def _square_corners(xy: np.ndarray, side_m: float, scene_crs: Any) -> np.ndarray:
    """The 4 corners [P, 4, 2] of ``side_m``-metre squares centred on points ``xy`` [P, 2] (scene CRS)."""
    if scene_crs is None:
        raise ConfigError("--point-box needs georeferenced scenes (metres); this scene has no CRS")
    crs = _pyproj_crs(scene_crs)
    half = side_m / 2.0
    x, y = xy[:, 0], xy[:, 1]
    if crs.is_geographic:
        geod = crs.get_geod()
        count = len(x)
        east, _, _ = geod.fwd(x, y, np.full(count, 90.0), np.full(count, half))
        west, _, _ = geod.fwd(x, y, np.full(count, -90.0), np.full(count, half))
        _, north, _ = geod.fwd(x, y, np.zeros(count), np.full(count, half))
        _, south, _ = geod.fwd(x, y, np.full(count, 180.0), np.full(count, half))
        x0, x1, y0, y1 = np.asarray(west), np.asarray(east), np.asarray(south), np.asarray(north)
    else:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 0.0
        if not unit:
            raise ConfigError(f"--point-box: the scene CRS {crs.name!r} has no linear unit to convert metres to")
        h = half / unit
        x0, x1, y0, y1 = x - h, x + h, y - h, y + h
    return np.stack([np.column_stack(c) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], axis=1)
