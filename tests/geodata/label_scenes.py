"""Tiny GeoTIFF scenes and label layers for the geodata tests (written in tmp_path)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import rasterio
import shapely
import shapely.affinity
from affine import Affine
from pyproj import Transformer

ROTATED = Affine.translation(500_000, 5_000_000) @ Affine.rotation(30) @ Affine.shear(10, 0) @ Affine.scale(2, -3)
"""A rotated and sheared pixel -> EPSG:32633 affine (2 m x 3 m pixels)."""

WIDTH, HEIGHT = 40, 30
NODATA_FROM_COL = 30
"""Columns NODATA_FROM_COL.. of the scenes written by :func:`write_scene` hold nodata (0)."""


def write_scene(
    path: Path, transform: Affine = ROTATED, crs: str | None = "EPSG:32633", *, width: int = WIDTH,
    height: int = HEIGHT, nodata_from_col: int | None = NODATA_FROM_COL,
) -> Path:
    """A 3-band uint8 GeoTIFF, value 100, 0 (nodata) from column ``nodata_from_col`` on."""
    data = np.full((3, height, width), 100, np.uint8)
    profile: dict[str, Any] = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8"}
    if nodata_from_col is not None:
        data[:, :, nodata_from_col:] = 0
        profile["nodata"] = 0
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def pixel_polygon(transform: Affine, c0: float, r0: float, c1: float, r1: float) -> Any:
    """The pixel rectangle [c0, c1] x [r0, r1] as a polygon in the scene's CRS (through the full affine)."""
    return shapely.affinity.affine_transform(
        shapely.box(c0, r0, c1, r1), [transform.a, transform.b, transform.d, transform.e, transform.c, transform.f])


def write_labels(
    path: Path, geometries: Sequence[Any], crs: str | None, *, to_crs: str | None = None, layer: str | None = None,
    **fields: Sequence[Any],
) -> Path:
    """A vector file of ``geometries`` (in ``crs``, written in ``to_crs`` when given) with ``fields``."""
    frame = geopandas.GeoDataFrame(dict(fields), geometry=list(geometries), crs=crs)
    if to_crs is not None:
        frame = frame.to_crs(to_crs)
    frame.to_file(path, layer=layer) if layer else frame.to_file(path)
    return path


def dense_oracle_box(geometry: Any, src: str, dst: str, transform: Affine, per_edge: int = 20_001) -> np.ndarray:
    """The pixel box of ``geometry``'s outline sampled ``per_edge`` times per edge, reprojected with
    pyproj and mapped by solving the affine's 2x2 system (an independent route to the exact box)."""
    lines = shapely.get_parts(shapely.boundary(geometry) if geometry.geom_type.endswith("Polygon") else geometry)
    pts = np.concatenate([np.linspace(c[i], c[i + 1], per_edge)
                          for c in (shapely.get_coordinates(line) for line in lines) for i in range(len(c) - 1)])
    x, y = Transformer.from_crs(src, dst, always_xy=True).transform(pts[:, 0], pts[:, 1])
    m = np.array([[transform.a, transform.b], [transform.d, transform.e]])
    cols, rows = np.linalg.solve(m, np.vstack([np.asarray(x) - transform.c, np.asarray(y) - transform.f]))
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()])
