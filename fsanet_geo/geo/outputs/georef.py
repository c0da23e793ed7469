"""Pixel boxes to CRS polygons through the raster's full affine, and to a GeoDataFrame.

:func:`labelled_boxes_frame` is the one place pixel boxes become a GeoDataFrame: the
detections (:func:`to_geodataframe`) and the synthetic ground truth both go through it.

Boxes are float [N, 4] (x_min, y_min, x_max, y_max) in scene pixels, x = column,
y = row, on pixel EDGES: the top-left corner of pixel (row 0, col 0) is
``transform * (0, 0)`` (GDAL's convention, no half-pixel shift). All four corners go
through the affine, so rotated and sheared geotransforms give exact parallelograms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections

if TYPE_CHECKING:
    import geopandas

COLUMNS = ["class_id", "class_name", "score", "x_min", "y_min", "x_max", "y_max", "scene"]


def _apply(transform: Affine, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    return a * cols + b * rows + c, d * cols + e * rows + f


def pixel_boxes_to_polygons(boxes: np.ndarray, transform: Affine) -> np.ndarray:
    """Polygons [N] (shapely, CRS units) of pixel boxes [N, 4] through ``transform``.

    Rings are closed, counter-clockwise in CRS space (the RFC 7946 exterior winding).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = boxes.T
    cols = np.stack([x0, x1, x1, x0, x0], axis=1)  # [N, 5] ring: TL, TR, BR, BL, TL
    rows = np.stack([y0, y0, y1, y1, y0], axis=1)
    xs, ys = _apply(transform, cols, rows)
    polygons = shapely.polygons(np.stack([xs, ys], axis=-1))
    return shapely.orient_polygons(polygons, exterior_cw=False)


def polygons_to_pixel_boxes(polygons: Any, transform: Affine) -> np.ndarray:
    """Inverse of :func:`pixel_boxes_to_polygons`: pixel boxes [N, 4] bounding the polygons.

    Accepts an array/sequence of polygons or a GeoSeries; exact (to float precision) for
    polygons made from pixel boxes, whatever the affine.
    """
    geoms = np.asarray(polygons, dtype=object)
    inverse = ~transform
    out = np.empty((len(geoms), 4), np.float64)
    for i, ring in enumerate(shapely.get_exterior_ring(geoms)):
        xy = shapely.get_coordinates(ring)
        cols, rows = _apply(inverse, xy[:, 0], xy[:, 1])
        out[i] = cols.min(), rows.min(), cols.max(), rows.max()
    return out


def labelled_boxes_frame(
    boxes: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    transform: Affine,
    crs: Any,
    scores: np.ndarray | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> "geopandas.GeoDataFrame":
    """One row per box [N, 4] (scene pixels, pixel edges) with its polygon in ``crs``.

    Columns: ``class_id`` (``labels`` [N], 0-based, int64), ``class_name``, ``score``
    (only when ``scores`` [N] is given), ``x_min, y_min, x_max, y_max`` (pixels), then the
    ``extra`` columns [N] in order, and the geometry (:func:`pixel_boxes_to_polygons`
    through ``transform``). Labels must index ``class_names`` (callers check and word
    the error).
    """
    import geopandas

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    names = np.asarray(list(class_names), dtype=object)
    data: dict[str, np.ndarray] = {
        "class_id": labels,
        "class_name": names[labels] if len(labels) else np.zeros(0, object),
    }
    if scores is not None:
        data["score"] = scores
    data.update(x_min=boxes[:, 0], y_min=boxes[:, 1], x_max=boxes[:, 2], y_max=boxes[:, 3])
    data.update(extra or {})
    geometry = geopandas.GeoSeries(pixel_boxes_to_polygons(boxes, transform), crs=crs)
    return geopandas.GeoDataFrame(data, geometry=geometry, crs=crs)


def to_geodataframe(
    dets: Detections,
    *,
    class_names: Sequence[str],
    transform: Affine | None,
    crs: Any,
    scene: str | None,
) -> "geopandas.GeoDataFrame":
    """One row per detection, columns :data:`COLUMNS` + geometry.

    ``class_id`` is the 0-based label, ``score`` float64 rounded to 6 decimals (the
    float32 score without its binary tail), x_min..y_max the box in scene
    pixels. With ``crs`` None (raster not georeferenced) the geometry stays in pixel
    coordinates (identity transform) and the frame has no CRS.
    """
    labels = dets.labels
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ConfigError(
            f"detection label {int(labels.max())} has no class name"
            f" (the model has {len(class_names)} classes)"
        )
    if crs is None or transform is None:
        transform, crs = Affine.identity(), None
    return labelled_boxes_frame(
        dets.boxes, labels, class_names=class_names, transform=transform, crs=crs,
        scores=np.round(dets.scores.astype(np.float64), 6),
        extra={"scene": np.full(len(dets), scene, dtype=object)},
    )


def empty_geodataframe(crs: Any = None) -> "geopandas.GeoDataFrame":
    """A frame with no rows but the detection columns and dtypes (for empty outputs)."""
    return to_geodataframe(Detections(), class_names=[], transform=None, crs=None, scene=None).set_crs(
        crs, allow_override=True
    )
