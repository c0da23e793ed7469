"""What imagery a model was trained on: ground sample distance and 8-bit levels.

Stored as checkpoint metadata (strings): ``gsd`` = metres per pixel (absent when unknown),
``levels`` = JSON ``{"percentiles": [2, 98], "low": [C], "high": [C]}``, the 8-bit values
the training images have at those percentiles per band. ``fsanet detect`` resamples scenes
to ``gsd`` and stretches non-8-bit scenes to ``levels``
(:mod:`fsanet_geo.geo.pixels.gsd`, :mod:`fsanet_geo.geo.pixels.stretch`).

The packaged demo model predates these keys; :data:`DEMO_IMAGERY` holds its values,
measured on its training data (``benchmarks/demo_imagery.py`` reproduces them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from fsanet_geo.errors import CheckpointError, ConfigError

GSD_KEY = "gsd"
LEVELS_KEY = "levels"
BANDS_KEY = "bands"
DEMO_KEY = "demo"
"""The metadata key only the packaged demo model carries."""


@dataclass(frozen=True)
class ImageryProfile:
    """A model's training imagery.

    Attributes:
        gsd: metres per pixel; None when unknown.
        percentiles: (low, high) percent at which ``low``/``high`` were measured.
        low, high: [C] 8-bit levels per band; None when unknown (stretches go to 0..255).
        bands: 1-based raster bands the model was trained on when chosen explicitly
            (``fsanet train --bands``); ``fsanet detect`` reads them by default. None: detect's choice.
    """

    gsd: float | None = None
    percentiles: tuple[float, float] = (2.0, 98.0)
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    bands: tuple[int, ...] | None = None

    @property
    def levels(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        return (self.low, self.high) if self.low is not None and self.high is not None else None

    def to_metadata(self) -> dict[str, str]:
        """Checkpoint metadata strings for what is known."""
        out: dict[str, str] = {}
        if self.gsd is not None:
            out[GSD_KEY] = f"{self.gsd:.6g}"
        if self.levels is not None:
            out[LEVELS_KEY] = json.dumps(
                {"percentiles": list(self.percentiles), "low": list(self.low or ()), "high": list(self.high or ())}
            )
        if self.bands is not None:
            out[BANDS_KEY] = json.dumps(list(self.bands))
        return out


DEMO_IMAGERY = ImageryProfile(
    gsd=0.5, percentiles=(2.0, 98.0), low=(30.0, 55.0, 32.0), high=(177.0, 167.0, 130.0)
)
"""The demo model's training imagery: the synthetic scenes are drawn at 0.5 m (the example
scene's pixel size); levels of 256 images of its last training set (seed 2029)."""


def check_gsd(gsd: float | None) -> float | None:
    """``gsd`` if None or a finite positive number of metres; :class:`ConfigError` otherwise."""
    if gsd is not None and not (math.isfinite(gsd) and gsd > 0):
        raise ConfigError(f"a GSD is metres per pixel > 0, got {gsd}")
    return gsd


def imagery_from_metadata(metadata: dict[str, str], source: str = "checkpoint") -> ImageryProfile:
    """The :class:`ImageryProfile` in checkpoint ``metadata``; the demo model's when it is the demo.

    Raises :class:`CheckpointError` for a malformed ``gsd`` or ``levels`` value.
    """
    if DEMO_KEY in metadata and GSD_KEY not in metadata and LEVELS_KEY not in metadata:
        return DEMO_IMAGERY
    gsd = None
    if GSD_KEY in metadata:
        try:
            gsd = check_gsd(float(metadata[GSD_KEY]))
        except (ValueError, ConfigError):
            raise CheckpointError(f"{source}: metadata gsd {metadata[GSD_KEY]!r} is not metres > 0") from None
    bands = _bands_from_metadata(metadata, source)
    if LEVELS_KEY not in metadata:
        return ImageryProfile(gsd=gsd, bands=bands)
    try:
        data = json.loads(metadata[LEVELS_KEY])
        pct = (float(data["percentiles"][0]), float(data["percentiles"][1]))
        low, high = tuple(float(v) for v in data["low"]), tuple(float(v) for v in data["high"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise CheckpointError(f"{source}: metadata levels {metadata[LEVELS_KEY]!r} are malformed") from None
    if len(low) != len(high) or any(not 0 <= lo < hi <= 255 for lo, hi in zip(low, high)):
        raise CheckpointError(f"{source}: metadata levels need 0 <= low < high <= 255 per band")
    return ImageryProfile(gsd, pct, low, high, bands)


def _bands_from_metadata(metadata: dict[str, str], source: str) -> tuple[int, ...] | None:
    if BANDS_KEY not in metadata:
        return None
    try:
        bands = tuple(int(b) for b in json.loads(metadata[BANDS_KEY]))
    except (ValueError, TypeError):
        raise CheckpointError(f"{source}: metadata bands {metadata[BANDS_KEY]!r} are not band numbers") from None
    if not bands or any(b < 1 for b in bands):
        raise CheckpointError(f"{source}: metadata bands {metadata[BANDS_KEY]!r} are not 1-based band numbers")
    return bands
