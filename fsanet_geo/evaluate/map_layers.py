"""The two layers of a map-space evaluation: reading them, one working CRS, the pixel size.

The truth is read as ``fsanet train`` reads labels (:func:`fsanet_geo.geodata.label_layer.read_label_layer`:
its ``--class-field``, class values as text, a missing value is no class); the detections with
geopandas, their class and score attributes as detect writes them.

Letters: F = features of a layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import DatasetError

CLASS = "class"
"""The column holding each feature's class name (str, None where missing) in the frames read here."""


def read_detections(path: Path, class_column: str) -> Any:
    """The detections layer as a GeoDataFrame with its ``class_column`` copied to :data:`CLASS`."""
    frame = _read(path, "detections")
    _require_column(frame, class_column, "detections", "--class-column")
    return frame.assign(**{CLASS: frame[class_column].astype(str)})


def read_truth(path: Path, class_field: str, *, given: bool) -> Any:
    """The truth layer with its classes from ``class_field`` (``given``: named by the user) in :data:`CLASS`."""
    import geopandas as gpd

    from fsanet_geo.geodata.label_layer import read_label_layer

    if not path.exists():
        raise DatasetError(f"truth file {path} does not exist")
    fields = _fields(path)
    if fields is not None and class_field not in fields:
        hint = "" if given else ": name the truth's class attribute with --class-field"
        raise DatasetError(f"the truth layer has no {class_field!r} column (columns: {', '.join(fields) or 'none'})"
                           f"{hint}")
    layer = read_label_layer(str(path), None, class_field)
    return gpd.GeoDataFrame({CLASS: layer.class_names}, geometry=list(layer.geometries), crs=layer.crs)


def _fields(path: Path) -> list[str] | None:
    """The attribute names of the file's only layer; None when pyogrio cannot tell (the reader then says why)."""
    import pyogrio

    try:
        return [str(f) for f in pyogrio.read_info(path)["fields"]]
    except Exception:  # noqa: BLE001 - several layers, unreadable: read_label_layer names the problem
        return None


def _read(path: Path, what: str) -> Any:
    import geopandas as gpd

    if not path.exists():
        raise DatasetError(f"{what} file {path} does not exist")
    try:
        return gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several DataSourceError types
        raise DatasetError(f"cannot read the {what} layer {path}: {exc}") from exc


def _require_column(frame: Any, column: str, what: str, option: str) -> None:
    if column not in frame.columns or column == frame.geometry.name:
        columns = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        raise DatasetError(f"the {what} layer has no {column!r} column (columns: {columns}); "
                           f"name it with {option}")


def common_crs(truth: Any, det: Any) -> tuple[Any, Any, Any]:
    """Put both layers in one working CRS (projected); None when both are pixel layers."""
    if truth.crs is None and det.crs is None:
        return truth, det, None
    if truth.crs is None or det.crs is None:
        missing = "truth" if truth.crs is None else "detections"
        raise DatasetError(
            f"the {missing} layer has no CRS but the other has one: both must be georeferenced "
            "(or both in pixel coordinates)"
        )
    crs = truth.crs
    if crs.is_geographic:
        if len(truth):
            crs = truth.estimate_utm_crs()
        elif len(det):
            crs = det.to_crs(truth.crs).estimate_utm_crs()
    if truth.crs != crs:
        truth = truth.to_crs(crs)
    if det.crs != crs:
        det = det.to_crs(crs)
    return truth, det, crs


def pixel_size_from(path: Path, df: Any) -> float | None:
    """A ``pixel_size`` column (first value) or layer-metadata item, if present and > 0."""
    value: Any = None
    if "pixel_size" in df.columns and len(df):
        value = df["pixel_size"].iloc[0]
    else:
        try:
            import pyogrio

            meta = pyogrio.read_info(path).get("layer_metadata") or {}
            value = meta.get("pixel_size")
        except Exception:  # noqa: BLE001 - metadata is optional
            value = None
    try:
        size = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return size if size is not None and np.isfinite(size) and size > 0 else None


def pixel_size_from_pixel_columns(df: Any) -> float | None:
    """Pixel size implied by the detect pipeline's x_min/x_max pixel columns: the median of
    (map-unit box width / pixel box width), in the layer's own CRS units."""
    if not {"x_min", "x_max"} <= set(df.columns) or not len(df):
        return None
    px = (df["x_max"] - df["x_min"]).to_numpy(np.float64)
    bounds = df.geometry.bounds
    mapw = (bounds["maxx"] - bounds["minx"]).to_numpy(np.float64)
    ok = np.isfinite(px) & np.isfinite(mapw) & (px > 0) & (mapw > 0)
    if not ok.any():
        return None
    return float(np.median(mapw[ok] / px[ok]))


def drop_unusable(df: Any) -> tuple[Any, int]:
    """The features with a geometry and a class, and how many were left out [F]."""
    bad = df.geometry.isna() | df.geometry.is_empty | df[CLASS].isna()
    return df.loc[~bad], int(bad.sum())


def crs_name(crs: Any) -> str | None:
    """``EPSG:32633`` (or the CRS's own string); None for pixel layers."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()
