"""A deterministic, AI-TOD-like synthetic scene generator.

``render_scene`` paints an overhead-looking RGB scene (field parcels, roads with lane
marks, rivers and lakes with ripples) and draws objects of the 8 AI-TOD classes on it,
each with its own shape and colours, in the context where it belongs (ships on water,
vehicles mostly on roads, bridges across water). Sizes are skewed like AI-TOD's: most
objects are under 16 px, a few reach 64 px, people are 2-6 px.

Every box is the exact pixel-edge extent of the pixels drawn for that object (shadows
excluded): ``x1 = first column``, ``x2 = last column + 1``, same for rows. Objects cut by
the image border are kept when most of them is inside; their box is clipped to what is
inside. The same seed always gives the same bytes (numpy's PCG64 generator).

``generate_synthetic_aitod`` (in :mod:`fsanet_geo.data.synthetic_aitod`, importable from here
too) writes a whole data set in the exact AI-TOD file layout.

Dimension letters: H, W image rows and columns; N objects. Units are image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError

DEFAULT_DENSITY = 1.5
"""Expected objects per 100 x 100 px of scene."""

# Relative frequency of each class (the first objects of a scene are one of each class).
_CLASS_WEIGHTS: dict[str, float] = {
    "airplane": 0.05,
    "bridge": 0.04,
    "storage-tank": 0.12,
    "ship": 0.12,
    "swimming-pool": 0.06,
    "vehicle": 0.45,
    "person": 0.11,
    "wind-mill": 0.05,
}

# (median, min, max) of the object's longer side in pixels (lognormal, clipped).
_SIZES: dict[str, tuple[float, float, float]] = {
    "airplane": (26.0, 12.0, 64.0),
    "bridge": (28.0, 12.0, 64.0),
    "storage-tank": (12.0, 4.0, 40.0),
    "ship": (16.0, 6.0, 60.0),
    "swimming-pool": (10.0, 4.0, 20.0),
    "vehicle": (9.0, 4.0, 16.0),
    "person": (3.5, 2.0, 6.0),
    "wind-mill": (16.0, 8.0, 40.0),
}

_CAR_COLOURS = np.array(
    [[235, 235, 235], [25, 25, 28], [170, 172, 178], [180, 30, 30], [30, 60, 150],
     [90, 95, 100], [200, 180, 60], [245, 245, 250]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class SyntheticScene:
    """A rendered scene with its labels and the context layers used to place objects.

    image: uint8 [H, W, 3]; boxes: float64 [N, 4] xyxy pixel edges; labels: int64 [N]
    (0-based indices into ``classes``); instance: int32 [H, W], the object drawn on top
    at each pixel (-1 for background; shadows are background); water, road: bool [H, W];
    pixels: int64 [N], how many pixels were drawn for each object (later objects may cover
    up to half of them).
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    instance: np.ndarray
    water: np.ndarray
    road: np.ndarray
    pixels: np.ndarray


@dataclass
class _Road:
    vertical: bool
    main: np.ndarray  # float64 [L] centre position across the road, per main-axis pixel
    slope: np.ndarray  # float64 [L] d(centre)/d(main)
    width: int


def render_scene(
    height: int,
    width: int,
    *,
    seed: int,
    density: float = DEFAULT_DENSITY,
    classes: Sequence[str] = AITOD_CLASSES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one synthetic scene: ``(image uint8 [H, W, 3], boxes float64 [N, 4], labels int64 [N])``.

    Boxes are xyxy pixel edges; labels index ``classes`` (a subset of the AI-TOD names;
    only those classes are drawn). ``density`` is the expected number of objects per
    100 x 100 px. Deterministic for a given seed.
    """
    scene = render_scene_layers(height, width, seed=seed, density=density, classes=classes)
    return scene.image, scene.boxes, scene.labels


def render_scene_layers(
    height: int,
    width: int,
    *,
    seed: int,
    density: float = DEFAULT_DENSITY,
    classes: Sequence[str] = AITOD_CLASSES,
) -> SyntheticScene:
    """Like :func:`render_scene`, also returning the instance map and context masks."""
    if height < 16 or width < 16:
        raise ConfigError(f"scene size must be at least 16 x 16 px, got {height} x {width}")
    if density < 0:
        raise ConfigError(f"density must be >= 0, got {density}")
    unknown = [c for c in classes if c not in AITOD_CLASSES]
    if unknown or not classes:
        raise ConfigError(f"classes must be AI-TOD class names {list(AITOD_CLASSES)}, got {unknown or 'none'}")
    rng = np.random.default_rng(seed)
    return _Painter(height, width, rng, list(classes)).paint(density)


class _Painter:
    """Holds the layers of one scene while it is painted."""

    def __init__(self, height: int, width: int, rng: np.random.Generator, classes: list[str]) -> None:
        self.h, self.w, self.rng, self.classes = height, width, rng, classes
        self.img = np.empty((height, width, 3), dtype=np.float32)
        self.water = np.zeros((height, width), dtype=bool)
        self.road = np.zeros((height, width), dtype=bool)
        self.instance = np.full((height, width), -1, dtype=np.int32)
        self.roads: list[_Road] = []
        self.boxes: list[tuple[int, int, int, int]] = []
        self.labels: list[int] = []
        self.drawn: list[int] = []  # pixels drawn per object
        self.visible: list[int] = []  # of those, pixels not covered by later objects
        self.scale = min(height, width)
        self.area_units = height * width / 800.0**2  # scenes of AI-TOD's size

    # ---------------------------------------------------------------- background
    def paint(self, density: float) -> SyntheticScene:
        self._fields()
        self._roads()
        self._water()
        self._objects(density)
        noise = self.rng.standard_normal((self.h, self.w, 1), dtype=np.float32) * 3.0
        np.add(self.img, noise, out=self.img)
        image = np.clip(self.img, 0, 255).round().astype(np.uint8)
        boxes = np.array(self.boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.array(self.labels, dtype=np.int64)
        pixels = np.array(self.drawn, dtype=np.int64)
        return SyntheticScene(image, boxes, labels, self.instance, self.water, self.road, pixels)

    def _fields(self) -> None:
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
            self.img[r0:r1, c0:c1] = colour + stripes[..., None]
        speckle = rng.standard_normal((self.h, self.w, 1), dtype=np.float32) * 5.0
        np.add(self.img, speckle, out=self.img)

    def _band(self, vertical: bool, width_px: int) -> _Road:
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
        return _Road(vertical, centre, dcentre, width_px)

    def _band_pixels(self, band: _Road) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

    def _roads(self) -> None:
        rng = self.rng
        n = 1 + rng.poisson(1.5 * self.area_units)
        for _ in range(n):
            road = self._band(bool(rng.random() < 0.5), int(rng.integers(8, 15)))
            rows, cols, offset = self._band_pixels(road)
            grey = rng.uniform(95, 130)
            self.img[rows, cols] = np.array([grey, grey, grey * 1.03], dtype=np.float32)
            edge = (offset == 0) | (offset == road.width - 1)
            self.img[rows[edge], cols[edge]] = grey * 0.8
            dash = int(rng.integers(4, 7))
            main = rows if road.vertical else cols
            mark = (offset == road.width // 2) & ((main // dash) % 2 == 0)
            self.img[rows[mark], cols[mark]] = 215.0
            self.road[rows, cols] = True
            self.roads.append(road)

    def _water(self) -> None:
        """Rivers (bands) and lakes (ellipses), drawn over roads, with ripple noise."""
        rng = self.rng
        n_rivers = rng.poisson(0.6 * self.area_units)
        n_lakes = rng.poisson(1.0 * self.area_units)
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
        self.img[rows, cols] = base + ripple[:, None].astype(np.float32)

    # ---------------------------------------------------------------- objects
    def _objects(self, density: float) -> None:
        rng = self.rng
        n_target = int(rng.poisson(density * self.h * self.w / 1e4))
        names = self.classes
        weights = np.array([_CLASS_WEIGHTS[c] for c in names], dtype=np.float64)
        weights /= weights.sum()
        order = list(names) if n_target >= len(names) else []
        order += [names[i] for i in rng.choice(len(names), size=max(0, n_target - len(order)), p=weights)]
        placed = 0
        for name in order:
            if placed >= n_target:
                break
            placed += self._place_group(name)
        self._bridges_at_crossings()

    def _size(self, name: str) -> float:
        median, lo, hi = _SIZES[name]
        return float(np.clip(median * math.exp(0.45 * self.rng.standard_normal()), lo, hi))

    def _sample_point(self, where: str) -> tuple[float, float] | None:
        """A random pixel centre (y, x) in ``where``: water, road, land or any."""
        ys = self.rng.uniform(0, self.h, 64)
        xs = self.rng.uniform(0, self.w, 64)
        if where == "any":
            return float(ys[0]), float(xs[0])
        ri, ci = ys.astype(np.int64), xs.astype(np.int64)
        if where == "water":
            ok = self.water[ri, ci]
        elif where == "road":
            ok = self.road[ri, ci]
        else:
            ok = ~self.water[ri, ci] & ~self.road[ri, ci]
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return None
        return float(ys[idx[0]]), float(xs[idx[0]])

    def _road_angle(self, y: float, x: float) -> float | None:
        """Direction (radians, image x to the right, y down) of the road under (y, x)."""
        for road in self.roads:
            main, across = (y, x) if road.vertical else (x, y)
            i = int(main)
            if abs(across - road.main[i]) <= road.width / 2:
                if road.vertical:
                    return math.atan2(1.0, road.slope[i])
                return math.atan2(road.slope[i], 1.0)
        return None

    def _place_group(self, name: str) -> int:
        """Place one object, or a row/cluster of them; return how many were placed."""
        rng = self.rng
        if name == "ship":
            where = "water"
        elif name == "vehicle":
            where = "road" if rng.random() < 0.8 else "land"
        elif name == "bridge":
            where = "water" if rng.random() < 0.7 else "road"
        elif name == "person":
            where = "land" if rng.random() < 0.8 else "road"
        else:
            where = "land"
        for _ in range(6):
            point = self._sample_point(where)
            if point is None:
                return 0
            y, x = point
            size = self._size(name)
            angle = rng.uniform(0, 2 * math.pi)
            road_angle = self._road_angle(y, x) if where == "road" else None
            if road_angle is not None:
                angle = road_angle + (math.pi / 2 if name == "bridge" else rng.choice([0.0, math.pi]))
            if name == "swimming-pool":
                angle = rng.choice([0.0, math.pi / 2]) + rng.uniform(-0.1, 0.1)
            if not self._draw(name, y, x, size, angle, where):
                continue
            count = 1
            group = {"vehicle": 5, "storage-tank": 5, "person": 3, "ship": 2}.get(name, 0)
            n_more = int(rng.integers(0, group + 1)) if group and rng.random() < 0.5 else 0
            offset = 0.0
            for k in range(1, n_more + 1):
                if name == "storage-tank":  # touching neighbours in a row or grid
                    step = size + rng.integers(0, 3)
                    dy, dx = divmod(k, 3)
                    ny, nx = y + dy * step, x + dx * step
                elif name == "person":
                    ny, nx = y + rng.uniform(-6, 6), x + rng.uniform(-6, 6)
                else:  # vehicles and ships in a line, nose to tail (touching at gap 0)
                    offset += size + float(rng.integers(0, 3))
                    ny, nx = y + offset * math.sin(angle), x + offset * math.cos(angle)
                count += int(self._draw(name, ny, nx, size, angle, where))
            return count
        return 0

    def _draw(
        self, name: str, y: float, x: float, size: float, angle: float, where: str, width: float | None = None
    ) -> bool:
        """Rasterise one object centred at (y, x) if it fits its context; record its box."""
        rng = self.rng
        half = int(math.ceil(math.hypot(size, width or size) / 2)) + 1  # covers any rotation
        iy, ix = int(math.floor(y)), int(math.floor(x))
        r0, c0 = iy - half, ix - half
        v = np.arange(r0, iy + half + 1, dtype=np.float32)[:, None] + 0.5 - y
        u = np.arange(c0, ix + half + 1, dtype=np.float32)[None, :] + 0.5 - x
        ca, sa = math.cos(angle), math.sin(angle)
        along = u * ca + v * sa
        across = -u * sa + v * ca
        layers = _SHAPES[name](along, across, size, width, rng)  # [(mask, colour [3] or [.., 3])]
        mask = layers[0][0]
        full = int(mask.sum())
        if full == 0:
            return False
        # crop to the image
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + mask.shape[0], self.h), min(c0 + mask.shape[1], self.w)
        if rr0 >= rr1 or cc0 >= cc1:
            return False
        sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
        crop = mask[sl]
        inside = int(crop.sum())
        if inside < 0.6 * full:
            return False
        win = (slice(rr0, rr1), slice(cc0, cc1))
        if where == "water" and name == "ship" and not self.water[win][crop].all():
            return False
        if where == "land" and (self.water[win][crop].mean() > 0.2):
            return False
        under = self.instance[win][crop]
        under = under[under >= 0]
        if under.size > 0.25 * inside:
            return False
        hidden_ids, hidden = np.unique(under, return_counts=True)
        if any(self.visible[i] - n < 0.5 * self.drawn[i] for i, n in zip(hidden_ids.tolist(), hidden.tolist())):
            return False  # it would hide more than half of an object already drawn
        if name == "wind-mill":
            self._shadow(mask, r0, c0, size)
        patch = self.img[win]
        for layer_mask, colour in layers:
            m = layer_mask[sl]
            patch[m] = colour
        jitter = rng.standard_normal((inside, 1), dtype=np.float32) * 3.0
        patch[crop] += jitter
        for i, n in zip(hidden_ids.tolist(), hidden.tolist()):
            self.visible[i] -= n
        self.instance[win][crop] = len(self.boxes)
        self.drawn.append(inside)
        self.visible.append(inside)
        rows = np.flatnonzero(crop.any(axis=1))
        cols = np.flatnonzero(crop.any(axis=0))
        self.boxes.append((cc0 + int(cols[0]), rr0 + int(rows[0]), cc0 + int(cols[-1]) + 1, rr0 + int(rows[-1]) + 1))
        self.labels.append(self.classes.index(name))
        return True

    def _shadow(self, mask: np.ndarray, r0: int, c0: int, size: float) -> None:
        """Darken the ground under a shifted copy of ``mask`` (sun from the upper left)."""
        shift = max(2, int(round(size * 0.35)))
        rows, cols = np.nonzero(mask)
        rows, cols = rows + r0 + shift, cols + c0 + shift
        keep = (rows >= 0) & (rows < self.h) & (cols >= 0) & (cols < self.w)
        rows, cols = rows[keep], cols[keep]
        free = self.instance[rows, cols] < 0
        self.img[rows[free], cols[free]] *= 0.55

    def _bridges_at_crossings(self) -> None:
        """Roads crossing water get a bridge over the crossing when it is short enough."""
        if "bridge" not in self.classes:
            return
        for road in self.roads:
            length = len(road.main)
            t = np.arange(length)
            centre = np.floor(road.main).astype(np.int64)
            limit = self.w if road.vertical else self.h
            ok = (centre >= 0) & (centre < limit)
            wet = np.zeros(length, dtype=bool)
            rows, cols = (t[ok], centre[ok]) if road.vertical else (centre[ok], t[ok])
            wet[ok] = self.water[rows, cols]
            edges = np.flatnonzero(np.diff(np.concatenate([[0], wet.astype(np.int8), [0]])))
            for start, stop in zip(edges[::2], edges[1::2]):
                span = stop - start + 4
                if span > 64 or start == 0 or stop == length:
                    continue
                mid = (start + stop) / 2
                i = int(mid)
                c = float(road.main[i])
                y, x = (mid, c) if road.vertical else (c, mid)
                angle = math.atan2(1.0, road.slope[i]) if road.vertical else math.atan2(road.slope[i], 1.0)
                self._draw("bridge", y, x, float(span), angle, "any", width=float(road.width + 2))


# ------------------------------------------------------------------------- shapes
# Each shape takes (along, across) coordinates of pixel centres relative to the object
# centre (float32 [h, w], along the object's axis), the size (longer side, px), an
# optional width (px; only bridges use it, to span a road) and the generator, and returns
# layers [(bool mask [h, w], colour)]: the first is the whole
# object, later ones are details painted on top (inside the first).

Layers = list[tuple[np.ndarray, np.ndarray]]


def _colour(rgb: Sequence[float], rng: np.random.Generator, spread: float = 0.08) -> np.ndarray:
    return (np.asarray(rgb, dtype=np.float32) * rng.uniform(1 - spread, 1 + spread)).clip(0, 255)


def _airplane(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    half = size / 2
    body = (np.abs(along) <= half) & (np.abs(across) <= max(0.8, size * 0.07))
    wing_pos = along - size * 0.05
    wings = (np.abs(wing_pos) <= size * 0.09 + np.abs(across) * 0.08) & (np.abs(across) <= half * 0.95)
    tail = (np.abs(along + half * 0.85) <= max(0.7, size * 0.05)) & (np.abs(across) <= size * 0.18)
    colour = _colour([205, 208, 212], rng)
    return [(body | wings | tail, colour), (body & (along > half * 0.75), colour * 0.8)]


def _bridge(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    width = width or max(3.0, size * rng.uniform(0.12, 0.25))
    deck = (np.abs(along) <= size / 2) & (np.abs(across) <= width / 2)
    rail = deck & (np.abs(across) > width / 2 - 1.0)
    return [(deck, _colour([168, 160, 148], rng)), (rail, _colour([110, 105, 98], rng))]


def _storage_tank(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    dist = np.hypot(along, across)
    radius = size / 2
    disc = dist <= radius
    rim = disc & (dist > radius - max(1.0, radius * 0.18))
    return [(disc, _colour([238, 238, 232], rng, 0.04)), (rim, _colour([60, 60, 64], rng))]


def _ship(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    half = size / 2
    beam = max(1.6, size * rng.uniform(0.2, 0.28)) / 2
    bow = size * 0.3
    taper = np.clip((half - along) / bow, 0, 1)
    hull = (along >= -half) & (along <= half) & (np.abs(across) <= beam * taper)
    cabin = hull & (along < -half * 0.3) & (along > -half * 0.8) & (np.abs(across) <= beam * 0.6)
    hull_colour = _colour([225, 225, 228], rng) if rng.random() < 0.7 else _colour([150, 60, 50], rng)
    return [(hull, hull_colour), (cabin, _colour([120, 125, 130], rng))]


def _swimming_pool(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    width = max(2.0, size * rng.uniform(0.45, 0.7))
    pool = (np.abs(along) <= size / 2) & (np.abs(across) <= width / 2)
    water = pool & (np.abs(along) <= size / 2 - 1) & (np.abs(across) <= width / 2 - 1)
    return [(pool, _colour([200, 235, 240], rng, 0.03)), (water, _colour([40, 200, 225], rng, 0.05))]


def _vehicle(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    width = max(2.0, size * rng.uniform(0.45, 0.55))
    body = (np.abs(along) <= size / 2) & (np.abs(across) <= width / 2)
    colour = _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))] * rng.uniform(0.92, 1.05)
    glass = body & (along > size * 0.08) & (along < size * 0.28)
    return [(body, colour.clip(0, 255)), (glass, colour * 0.45 + 10)]


def _person(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    radius = size / 2
    dot = np.maximum(np.abs(along), np.abs(across)) <= radius
    if size >= 4:
        dot &= np.hypot(along, across) <= radius * 1.25
    return [(dot, _colour([38, 34, 32], rng, 0.2))]


def _wind_mill(
    along: np.ndarray, across: np.ndarray, size: float, width: float | None, rng: np.random.Generator
) -> Layers:
    radius = size / 2
    blade = max(0.6, size * 0.045)
    mask = np.hypot(along, across) <= max(1.0, size * 0.08)
    for k in range(3):
        a = 2 * math.pi * k / 3
        ca, sa = math.cos(a), math.sin(a)
        t = along * ca + across * sa
        n = -along * sa + across * ca
        mask |= (t >= 0) & (t <= radius) & (np.abs(n) <= blade)
    return [(mask, _colour([235, 236, 238], rng, 0.03))]


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, float, float | None, np.random.Generator], Layers]] = {
    "airplane": _airplane,
    "bridge": _bridge,
    "storage-tank": _storage_tank,
    "ship": _ship,
    "swimming-pool": _swimming_pool,
    "vehicle": _vehicle,
    "person": _person,
    "wind-mill": _wind_mill,
}


def __getattr__(name: str) -> Any:
    """``generate_synthetic_aitod`` lives in :mod:`fsanet_geo.data.synthetic_aitod`."""
    if name in ("generate_synthetic_aitod", "scene_seed"):
        from fsanet_geo.data import synthetic_aitod

        return getattr(synthetic_aitod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
