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

The number of roads, rivers and lakes grows with the scene: by its AREA in 800 x 800 px
units (``context_scale="area"``, right for one training image of AI-TOD's size) or by its
longer SIDE in 800 px units (``context_scale="side"``, for scenes many tiles wide: a band
crossing the scene crosses many tiles, so area scaling would make a 3000 px scene mostly
water; side scaling keeps the context per 800 px tile about as in the training images).
Objects, shapes and boxes do not depend on it; at 800 x 800 px both give the same scene.

Object classes' frequencies, sizes and shapes are in :mod:`fsanet_geo.synth.shapes`;
:func:`fsanet_geo.synth.aitod_layout.generate_synthetic_aitod` writes a whole data set in
the exact AI-TOD file layout.

Dimension letters: H, W image rows and columns; N objects. Units are image pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError
from fsanet_geo.synth.landscape import Landscape, paint_landscape
from fsanet_geo.synth.shapes import CLASS_WEIGHTS, SHAPES, SIZES

DEFAULT_DENSITY = 1.5
"""Expected objects per 100 x 100 px of scene."""

ContextScale = Literal["area", "side"]
"""How the number of roads, rivers and lakes grows with the scene (module docstring)."""

_CONTEXT_SIDE_PX = 800.0
"""The context unit: one AI-TOD image (800 x 800 px)."""


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


def render_scene(
    height: int,
    width: int,
    *,
    seed: int,
    density: float = DEFAULT_DENSITY,
    classes: Sequence[str] = AITOD_CLASSES,
    context_scale: ContextScale = "area",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one synthetic scene: ``(image uint8 [H, W, 3], boxes float64 [N, 4], labels int64 [N])``.

    Boxes are xyxy pixel edges; labels index ``classes`` (a subset of the AI-TOD names;
    only those classes are drawn). ``density`` is the expected number of objects per
    100 x 100 px; ``context_scale`` sets how roads, rivers and lakes grow with the scene
    ("area" for training images, "side" for large scenes; module docstring).
    Deterministic for a given seed.
    """
    scene = render_scene_layers(height, width, seed=seed, density=density, classes=classes,
                                context_scale=context_scale)
    return scene.image, scene.boxes, scene.labels


def render_scene_layers(
    height: int,
    width: int,
    *,
    seed: int,
    density: float = DEFAULT_DENSITY,
    classes: Sequence[str] = AITOD_CLASSES,
    context_scale: ContextScale = "area",
) -> SyntheticScene:
    """Like :func:`render_scene`, also returning the instance map and context masks."""
    if height < 16 or width < 16:
        raise ConfigError(f"scene size must be at least 16 x 16 px, got {height} x {width}")
    if density < 0:
        raise ConfigError(f"density must be >= 0, got {density}")
    unknown = [c for c in classes if c not in AITOD_CLASSES]
    if unknown or not classes:
        raise ConfigError(f"classes must be AI-TOD class names {list(AITOD_CLASSES)}, got {unknown or 'none'}")
    if context_scale == "area":
        context_units = height * width / _CONTEXT_SIDE_PX**2
    elif context_scale == "side":
        context_units = max(height, width) / _CONTEXT_SIDE_PX
    else:
        raise ConfigError(f"context scale must be 'area' or 'side', got {context_scale!r}")
    rng = np.random.default_rng(seed)
    land = paint_landscape(height, width, rng, context_units=context_units)
    return _Painter(land, rng, list(classes)).paint(density)


class _Painter:
    """Places and draws the objects of one scene on its landscape (painted in place)."""

    def __init__(self, land: Landscape, rng: np.random.Generator, classes: list[str]) -> None:
        self.h, self.w = land.water.shape
        self.rng, self.classes = rng, classes
        self.img, self.water, self.road, self.roads = land.image, land.water, land.road, land.roads
        self.instance = np.full((self.h, self.w), -1, dtype=np.int32)
        self.boxes: list[tuple[int, int, int, int]] = []
        self.labels: list[int] = []
        self.drawn: list[int] = []  # pixels drawn per object
        self.visible: list[int] = []  # of those, pixels not covered by later objects

    def paint(self, density: float) -> SyntheticScene:
        """Draw about ``density`` objects per 100 x 100 px, add sensor noise, return the scene."""
        self._objects(density)
        noise = self.rng.standard_normal((self.h, self.w, 1), dtype=np.float32) * 3.0
        np.add(self.img, noise, out=self.img)
        image = np.clip(self.img, 0, 255).round().astype(np.uint8)
        boxes = np.array(self.boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.array(self.labels, dtype=np.int64)
        pixels = np.array(self.drawn, dtype=np.int64)
        return SyntheticScene(image, boxes, labels, self.instance, self.water, self.road, pixels)

    def _objects(self, density: float) -> None:
        rng = self.rng
        n_target = int(rng.poisson(density * self.h * self.w / 1e4))
        names = self.classes
        weights = np.array([CLASS_WEIGHTS[c] for c in names], dtype=np.float64)
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
        median, lo, hi = SIZES[name]
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
        layers = SHAPES[name](along, across, size, width, rng)  # [(mask, colour [3] or [.., 3])]
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
