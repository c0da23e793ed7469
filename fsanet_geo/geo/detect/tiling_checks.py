"""Sanity of a run's tile size and overlap against the model that will see the tiles.

Refused (in :func:`~fsanet_geo.geo.settings.resolve_tiling`): an overlap over half the tile,
where every pixel is read about four times or more (``--tile-size 100 --overlap 64``:
225 tiles where 16 would do) and results change. Warned here, when the user chose the
values: an overlap under the model's largest regression range (objects that size, cut by a
seam, are seen whole in no tile; only under the default overlap, which the tile size may
cap) and a tile smaller than the model's training size.
"""

from __future__ import annotations

import math
import warnings

from fsanet_geo.geo.settings import DEFAULT_OVERLAP, DetectSettings, Predictor, predictor_config


class TilingWarning(UserWarning):
    """A tile size or overlap that works but likely costs detections."""


def largest_regress_range(predictor: Predictor) -> float | None:
    """The largest finite bound of the model's ``config.regress_ranges`` (pixels from a point to
    a box side), or None for a predictor without that config."""
    ranges = predictor_config(predictor, "regress_ranges")
    bounds = [float(v) for pair in ranges or () for v in pair if math.isfinite(v) and 0 < v < 1e6]
    return max(bounds) if bounds else None


def tiling_warnings(settings: DetectSettings, predictor: Predictor, tile: int, overlap: int) -> list[str]:
    """The warnings for the user-given ``settings.overlap`` / ``settings.tile_size`` (pixels);
    the defaults are not warned about."""
    found = []
    reach = largest_regress_range(predictor)
    default = min(DEFAULT_OVERLAP, tile // 4)  # never warn about what the default rule would choose
    if settings.overlap is not None and reach is not None and overlap < min(reach, default):
        found.append(f"--overlap {overlap} is under the model's largest regression range ({reach:g} px): "
                     f"objects over {overlap} px cut by a tile seam may be missed or split")
    size = predictor_config(predictor, "input_size")
    size = max(size) if isinstance(size, (tuple, list)) else size
    if settings.tile_size is not None and size and tile < int(size):
        found.append(f"--tile-size {tile} is smaller than the model's training size ({int(size)} px): "
                     f"more tiles, more seams, and the model sees less context")
    return found


def warn_about_tiling(settings: DetectSettings, predictor: Predictor, tile: int, overlap: int) -> None:
    """Issue each of :func:`tiling_warnings` as a :class:`TilingWarning`."""
    for message in tiling_warnings(settings, predictor, tile, overlap):
        warnings.warn(message, TilingWarning, stacklevel=3)
