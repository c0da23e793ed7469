"""Reading one label layer: its geometries, CRS and per-feature class names.

Any vector format pyogrio reads (GeoPackage, Shapefile, GeoJSON, FlatGeobuf, ...), local or
remote (GDAL's ``/vsicurl/`` etc.). Class names come from ``class_field`` as strings (an
integer code stored as a float because of missing values, ``3.0``, reads ``"3"``); without a
field every feature is one class named after the layer (the
layer read, by its name in the file: a GeoPackage's layer, a Shapefile's or GeoJSON's file stem).
A feature whose class value is missing (null / NaN) has no usable label: it is counted as
``empty`` by :mod:`fsanet_geo.geodata.labels`, like a feature without geometry.

Letters: F = features of the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from fsanet_geo.errors import ConfigError, DatasetError, first_line
from fsanet_geo.geo.pixels.remote import display_location, is_remote


@dataclass
class LabelLayer:
    """The features of one label layer, before they meet a raster.

    Attributes:
        path: the vector file as given (shown in messages).
        layer: the layer read (None: the file's only layer).
        geometries: shapely geometries [F] (object array; None for a feature without one).
        class_names: str or None [F] (object array; None where the class value is missing).
        crs: the layer's pyproj CRS, None when it has none.
    """

    path: str
    layer: str | None
    geometries: np.ndarray
    class_names: np.ndarray
    crs: Any

    def __len__(self) -> int:
        return len(self.geometries)

    def found_classes(self) -> set[str]:
        """The distinct class names of the features that have one."""
        return {c for c in self.class_names.tolist() if c is not None}


def layer_class_name(path: str, layer: str | None) -> str:
    """The single class of a layer read without ``class_field``: its layer name, else the file stem."""
    if layer:
        return layer
    return PurePosixPath(display_location(path).split("?", 1)[0]).stem or display_location(path)


def read_label_layer(path: str, layer: str | None = None, class_field: str | None = None) -> LabelLayer:
    """Read the vector layer ``layer`` of ``path`` with its class names.

    Raises:
        DatasetError: the file is missing, not a vector file pyogrio can read, without geometry,
            has no such layer, or has several and ``layer`` is None.
        ConfigError: ``class_field`` is not a field of the layer (the message lists its fields).
    """
    import geopandas

    shown = display_location(path)
    if not is_remote(path):
        p = Path(path)
        if not p.exists():
            raise DatasetError(f"labels {shown} do not exist")
        if p.is_dir() and not _is_vector_folder(p):
            raise DatasetError(f"labels {shown} is a folder, not a vector file")
    layer_name = _layer_name(path, layer)
    try:
        frame = geopandas.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - any read failure is the file's
        raise DatasetError(f"cannot read labels {shown}: {_reason(exc)}") from exc
    if not isinstance(frame, geopandas.GeoDataFrame):  # e.g. a CSV without a geometry column
        raise DatasetError(f"labels {shown} have no geometry column: not a vector layer")
    if class_field is None:
        names = np.full(len(frame), layer_class_name(path, layer_name), dtype=object)
    elif class_field not in frame.columns or class_field == frame.geometry.name:
        fields = [c for c in frame.columns if c != frame.geometry.name]
        listed = ", ".join(fields) if fields else "none"
        raise ConfigError(f"labels {shown} have no field {class_field!r} for --class-field (fields: {listed})")
    else:
        names = np.array([_class_text(v) for v in frame[class_field].tolist()], dtype=object)
    geoms = np.asarray(frame.geometry.to_numpy(), dtype=object)
    return LabelLayer(path=shown, layer=layer, geometries=geoms, class_names=names, crs=frame.crs)


def _is_vector_folder(path: Path) -> bool:
    """A folder GDAL opens as one data source (a Shapefile folder, a FileGDB ``.gdb``)."""
    return path.suffix.lower() == ".gdb" or any(path.glob("*.shp"))


def _layer_name(path: str, layer: str | None) -> str | None:
    """The layer to read: ``layer``, else the file's only one (None when GDAL names none);
    :class:`DatasetError` naming the layers of ``path`` when it has no layer ``layer``, or
    several and ``layer`` is None."""
    import pyogrio

    try:
        layers = [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # noqa: BLE001 - unreadable: say so with GDAL's reason
        raise DatasetError(f"cannot read labels {display_location(path)}: {_reason(exc)}") from exc
    if layer is None:
        if len(layers) > 1:  # GDAL would read the first: a run on the wrong layer would go unnoticed
            shown = display_location(path)
            raise DatasetError(f"labels {shown} hold {len(layers)} layers ({', '.join(layers)}): pick one as "
                               f"{shown}|layername=NAME (in --scenes: the layer column)")
        return layers[0] if layers else None
    if layer not in layers:
        raise DatasetError(f"labels {display_location(path)} have no layer {layer!r} (layers: {', '.join(layers)})")
    return layer


def _reason(exc: BaseException) -> str:
    """GDAL's reason, short: its long "not recognized ... specify the driver" text becomes one phrase."""
    detail = first_line(exc)
    return "not a vector format GDAL can read" if "not recognized as" in detail else detail


def _class_text(value: Any) -> str | None:
    """A class value as text; None for a missing one (None, NaN, empty text)."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (np.floating, np.integer)):
        return _class_text(value.item())
    text = str(value).strip()
    return text or None
