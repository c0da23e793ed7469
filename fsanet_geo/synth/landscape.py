"""The ground of a synthetic scene: field parcels, roads with lane marks, rivers and lakes.

:func:`paint_landscape` paints it (float32 RGB, before objects and sensor noise) and
returns the context masks that decide where objects may go. The number of roads, rivers
and lakes is proportional to ``context_units`` (see :mod:`fsanet_geo.synth.render`).

Dimension letters: H, W image rows and columns; L pixels along a band's main axis.
Units are image pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Band:
    """A gently curving band (road or river) crossing the scene along rows or columns."""

    vertical: bool
    main: np.ndarray  # float64 [L] centre position across the band, per main-axis pixel
    slope: np.ndarray  # float64 [L] d(centre)/d(main)
    width: int


@dataclass
class Landscape:
    """The painted ground: image float32 [H, W, 3] (RGB, about 0..255), water and road
    bool [H, W] (road excludes water), the roads as bands (for bridges and car headings)."""

    image: np.ndarray
    water: np.ndarray
    road: np.ndarray
    roads: list[Band] = field(default_factory=list)


def paint_landscape(height: int, width: int, rng: np.random.Generator, *, context_units: float) -> Landscape:
    """Paint fields, then roads, then water (over roads) of a ``height`` x ``width`` px scene."""
    painter = _GroundPainter(height, width, rng, context_units)
    painter.paint_fields()
    painter.paint_roads()
    painter.paint_water()
    return Landscape(painter.image, painter.water, painter.road, painter.roads)


class _GroundPainter:
    """Holds the ground layers while they are painted; uses ``rng`` in a fixed order."""

    def __init__(self, height: int, width: int, rng: np.random.Generator, context_units: float) -> None:
        self.h, self.w, self.rng = height, width, rng
        self.image = np.empty((height, width, 3), dtype=np.float32)
        self.water = np.zeros((height, width), dtype=bool)
        self.road = np.zeros((height, width), dtype=bool)
        self.roads: list[Band] = []
        self.scale = min(height, width)
        self.context_units = context_units

    def paint_fields(self) -> None:
        """Rectangular parcels of greens, browns and bare soil, with crop stripes."""
        rng = self.rng
        palette = np.array(
            [[78, 112, 52], [96, 128, 62], [60, 92, 44], [132, 118, 82], [150, 132, 96],
             [118, 100, 70], [160, 150, 112], [104, 120, 70], [48, 72, 40]],
            dtype=np.float32,
        )
        stack = [(0, self.h, 0, self.w)]
        while stack:
            r0, r1, c0, c1 = stack.pop()
            hh, ww = r1 - r0, c1 - c0
            if max(hh, ww) > 240 or (max(hh, ww) > 90 and rng.random() < 0.6):
                if hh > ww:
                    cut = r0 + int(hh * rng.uniform(0.3, 0.7))
                    stack += [(r0, cut, c0, c1), (cut, r1, c0, c1)]
                else:
                    cut = c0 + int(ww * rng.uniform(0.3, 0.7))
                    stack += [(r0, r1, c0, cut), (r0, r1, cut, c1)]
                continue
            colour = palette[rng.integers(len(palette))] * rng.uniform(0.9, 1.1)
            theta = rng.uniform(0, math.pi)
            period = rng.uniform(3.0, 9.0)
            amp = rng.choice([0.0, 4.0, 8.0])
            ys = np.arange(r0, r1, dtype=np.float32)[:, None] * math.sin(theta)
            xs = np.arange(c0, c1, dtype=np.float32)[None, :] * math.cos(theta)
            stripes = np.sin((xs + ys) * (2 * math.pi / period)) * amp
            self.image[r0:r1, c0:c1] = colour + stripes[..., None]
        speckle = rng.standard_normal((self.h, self.w, 1), dtype=np.float32) * 5.0
        np.add(self.image, speckle, out=self.image)

    def _band(self, vertical: bool, width_px: int) -> Band:
        """A gently curving band crossing the scene; centre as a function of the main axis."""
        rng = self.rng
        length, across = (self.h, self.w) if vertical else (self.w, self.h)
        t = np.arange(length, dtype=np.float64)
        c0 = rng.uniform(0.1, 0.9) * across
        slope = rng.uniform(-0.4, 0.4)
        amp = rng.uniform(0, 0.06) * across
        period = rng.uniform(0.8, 2.0) * length
        phase = rng.uniform(0, 2 * math.pi)
        k = 2 * math.pi / period
        centre = c0 + slope * (t - length / 2) + amp * np.sin(k * t + phase)
        dcentre = slope + amp * k * np.cos(k * t + phase)
        return Band(vertical, centre, dcentre, width_px)

    def _band_pixels(self, band: Band) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, offset-across) of the band's pixels inside the image."""
        length = len(band.main)
        start = np.floor(band.main - band.width / 2).astype(np.int64)
        across = start[:, None] + np.arange(band.width)[None, :]
        main = np.broadcast_to(np.arange(length)[:, None], across.shape)
        offset = np.broadcast_to(np.arange(band.width)[None, :], across.shape)
        limit = self.h if not band.vertical else self.w
        keep = (across >= 0) & (across < limit)
        across, main, offset = across[keep], main[keep], offset[keep]
        if band.vertical:
            return main, across, offset
        return across, main, offset

    def paint_roads(self) -> None:
        """Asphalt bands with darker edges and a dashed centre line."""
        rng = self.rng
        n = 1 + rng.poisson(1.5 * self.context_units)
        for _ in range(n):
            road = self._band(bool(rng.random() < 0.5), int(rng.integers(8, 15)))
            rows, cols, offset = self._band_pixels(road)
            grey = rng.uniform(95, 130)
            self.image[rows, cols] = np.array([grey, grey, grey * 1.03], dtype=np.float32)
            edge = (offset == 0) | (offset == road.width - 1)
            self.image[rows[edge], cols[edge]] = grey * 0.8
            dash = int(rng.integers(4, 7))
            main = rows if road.vertical else cols
            mark = (offset == road.width // 2) & ((main // dash) % 2 == 0)
            self.image[rows[mark], cols[mark]] = 215.0
            self.road[rows, cols] = True
            self.roads.append(road)

    def paint_water(self) -> None:
        """Rivers (bands) and lakes (ellipses), drawn over roads, with ripple noise."""
        rng = self.rng
        n_rivers = rng.poisson(0.6 * self.context_units)
        n_lakes = rng.poisson(1.0 * self.context_units)
        if n_rivers + n_lakes == 0:
            n_lakes = 1
        for _ in range(n_rivers):
            width_px = int(max(6, rng.uniform(0.04, 0.12) * min(self.scale, 1200)))
            rows, cols, _ = self._band_pixels(self._band(bool(rng.random() < 0.5), width_px))
            self.water[rows, cols] = True
        yy = np.arange(self.h)[:, None]
        xx = np.arange(self.w)[None, :]
        for _ in range(n_lakes):
            ry = rng.uniform(0.08, 0.25) * min(self.scale, 1200)
            rx = ry * rng.uniform(0.6, 1.6)
            cy, cx = rng.uniform(0, self.h), rng.uniform(0, self.w)
            r0, r1 = max(0, int(cy - ry)), min(self.h, int(cy + ry) + 1)
            c0, c1 = max(0, int(cx - rx)), min(self.w, int(cx + rx) + 1)
            if r0 >= r1 or c0 >= c1:
                continue
            wobble = 1 + 0.12 * np.sin(3 * np.arctan2(yy[r0:r1] - cy, xx[:, c0:c1] - cx) + rng.uniform(0, 6))
            inside = ((yy[r0:r1] - cy) / ry) ** 2 + ((xx[:, c0:c1] - cx) / rx) ** 2 <= wobble**2
            self.water[r0:r1, c0:c1] |= inside
        self.road &= ~self.water
        rows, cols = np.nonzero(self.water)
        if rows.size == 0:
            return
        phi = rng.uniform(0, math.pi)
        ripple = np.sin((cols * math.cos(phi) + rows * math.sin(phi)) * 0.9) * 4.0
        base = np.array([34, 62, 96], dtype=np.float32) * rng.uniform(0.85, 1.15)
        self.image[rows, cols] = base + ripple[:, None].astype(np.float32)
