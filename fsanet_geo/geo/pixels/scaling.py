"""Linear per-band scaling of raster values (uint16, int16, float, ...) to 8 bits.

The scaling is fixed once per scene (from percentiles of a decimated read, or from a
user range) and then applied identically to every tile, so that tiles never differ in
contrast from one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fsanet_geo.errors import ConfigError


@dataclass(frozen=True)
class ByteScaling:
    """Per-band linear map of raster values to 0..255: ``low`` -> 0, ``high`` -> 255, clipped.

    Attributes:
        low, high: float64 [C], raster value units, ``high > low`` for every band.
    """

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        low = np.asarray(self.low, np.float64).reshape(-1)
        high = np.asarray(self.high, np.float64).reshape(-1)
        if low.shape != high.shape:
            raise ConfigError(f"scaling needs as many low as high values, got {low.size} and {high.size}")
        if not (np.isfinite(low).all() and np.isfinite(high).all()) or (high <= low).any():
            raise ConfigError(f"scaling range must be finite with max > min, got {low.tolist()}..{high.tolist()}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Scale ``data`` (any numeric dtype, [C, H, W]) to uint8 [C, H, W]; NaN becomes 0."""
        if data.shape[0] != self.low.size:
            raise ConfigError(f"scaling is for {self.low.size} band(s), the data has {data.shape[0]}")
        low = self.low.astype(np.float32)[:, None, None]
        gain = (255.0 / (self.high - self.low)).astype(np.float32)[:, None, None]
        out = data.astype(np.float32, copy=True)
        out -= low
        out *= gain
        np.nan_to_num(out, copy=False, nan=0.0)
        np.clip(out, 0.0, 255.0, out=out)
        np.rint(out, out=out)
        return out.astype(np.uint8)


def range_scaling(value_range: Sequence[float], bands: int) -> ByteScaling:
    """A user range: ``(min, max)`` for all ``bands`` bands, or ``(min1, max1, ..., minC, maxC)``."""
    values = [float(v) for v in value_range]
    if len(values) == 2:
        values = values * bands
    if len(values) != 2 * bands:
        raise ConfigError(
            f"--scale gives {len(values) / 2:g} band range(s) but {bands} band(s) are read: "
            f"give MIN,MAX for all bands or one MIN,MAX pair per band"
        )
    pairs = np.array(values, np.float64).reshape(bands, 2)
    bad = [i + 1 for i, (low, high) in enumerate(pairs) if not (np.isfinite(low) and np.isfinite(high) and high > low)]
    if bad:
        raise ConfigError(f"scaling range needs finite MAX > MIN, not so for band(s) {bad}")
    return ByteScaling(pairs[:, 0], pairs[:, 1])


def percentile_scaling(
    samples: np.ndarray, valid: np.ndarray | None, percentiles: Sequence[float] = (2.0, 98.0)
) -> ByteScaling:
    """Per-band percentiles of the valid sample pixels as the scaling range.

    Args:
        samples: [C, H, W] raster values (a decimated read of the scene).
        valid: bool [H, W], True where the pixel holds data; None when all do. NaN values
            are ignored as well.
        percentiles: (low, high) in percent, ``0 <= low < high <= 100``.

    A band without valid samples gets the range 0..255; a flat band gets ``(v, v + 1)``.
    """
    lo_pct, hi_pct = (float(p) for p in percentiles)
    if not 0.0 <= lo_pct < hi_pct <= 100.0:
        raise ConfigError(f"percentiles must satisfy 0 <= low < high <= 100, got {lo_pct},{hi_pct}")
    lows, highs = [], []
    for band in samples:
        values = band[valid] if valid is not None else band.reshape(-1)
        values = values.astype(np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            lows.append(0.0)
            highs.append(255.0)
            continue
        low, high = np.percentile(values, [lo_pct, hi_pct])
        if not high > low:
            high = low + 1.0
        lows.append(float(low))
        highs.append(float(high))
    return ByteScaling(np.array(lows), np.array(highs))
