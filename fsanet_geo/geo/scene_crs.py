"""The CRS of one output layer for scenes that may be in several CRSs.

Each scene's detections are georeferenced in its own CRS, then reprojected to the layer's:
the one the user chose (``--crs``), else the first scene's. GeoJSON is written in WGS84
lon/lat whatever the layer CRS (RFC 7946), so scenes in several CRSs fit it without a word;
for a CRS-bound format (GeoPackage, Shapefile, FlatGeobuf, CSV, GeoJSON with ``keep_crs``)
the reprojection to the first scene's CRS is said once (:class:`MixedCrsWarning`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from fsanet_geo.errors import ConfigError, RasterError


class MixedCrsWarning(UserWarning):
    """Scenes in several CRSs go into one CRS-bound layer, reprojected to the first scene's CRS."""


def check_crs(text: str) -> Any:
    """``text`` ("EPSG:32633", WKT, PROJ) as a rasterio CRS; :class:`ConfigError` when unknown."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise ConfigError(f"--crs: cannot read {text!r} as a CRS (e.g. EPSG:32633)") from exc


def layer_crs(
    crs_list: Sequence[Any], chosen: str | None = None, *, output: str | None = None, crs_bound: bool = True
) -> Any:
    """The layer CRS for scenes with CRSs ``crs_list`` (rasterio CRS or None each, in order).

    ``chosen`` (``--crs``) wins; else the first scene's, with one :class:`MixedCrsWarning`
    naming ``output`` when the scenes differ and the format is ``crs_bound``.

    Raises:
        RasterError: some scenes have a CRS and others not (pixels and map units cannot share a layer).
    """
    if not crs_list:
        return None
    missing = sum(c is None for c in crs_list)
    if 0 < missing < len(crs_list):
        raise RasterError(f"{missing} of {len(crs_list)} scenes have no CRS: their pixel coordinates cannot share "
                          "a layer with georeferenced scenes (write one output per scene with --output-dir)")
    if chosen is not None:
        return check_crs(chosen)
    first = crs_list[0]
    distinct = {c.to_wkt() for c in crs_list if c is not None}
    if len(distinct) > 1 and crs_bound:
        name = first.to_string() if first is not None else "none"
        target = f"{output} is" if output else "the detections are"
        warnings.warn(f"the scenes are in {len(distinct)} CRSs: {target} reprojected to the first scene's "
                      f"({name}); choose another with --crs", MixedCrsWarning, stacklevel=3)
    return first
