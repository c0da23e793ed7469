"""What each AI-TOD class looks like in a synthetic scene: frequency, size and shape.

A shape function takes the (along, across) coordinates of pixel centres relative to the
object centre (float32 [h, w], ``along`` on the object's axis, pixels), the object size
(its longer side, pixels), an optional width (pixels; only bridges use it, to span a
road) and the scene's random generator, and returns :data:`Layers`: the first
(mask, colour) pair is the whole object, later ones are details painted on top of it
(inside the first). Colours are float32 RGB in 0..255.

Dimension letters: h, w rows and columns of the patch an object is drawn in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

CLASS_WEIGHTS: dict[str, float] = {
    "airplane": 0.05,
    "bridge": 0.04,
    "storage-tank": 0.12,
    "ship": 0.12,
    "swimming-pool": 0.06,
    "vehicle": 0.45,
    "person": 0.11,
    "wind-mill": 0.05,
}
"""Relative frequency of each class (the first objects of a scene are one of each class)."""

SIZES: dict[str, tuple[float, float, float]] = {
    "airplane": (26.0, 12.0, 64.0),
    "bridge": (28.0, 12.0, 64.0),
    "storage-tank": (12.0, 4.0, 40.0),
    "ship": (16.0, 6.0, 60.0),
    "swimming-pool": (10.0, 4.0, 20.0),
    "vehicle": (9.0, 4.0, 16.0),
    "person": (3.5, 2.0, 6.0),
    "wind-mill": (16.0, 8.0, 40.0),
}
"""(median, min, max) of each class's longer side, pixels (lognormal, clipped)."""

_CAR_COLOURS = np.array(
    [[235, 235, 235], [25, 25, 28], [170, 172, 178], [180, 30, 30], [30, 60, 150],
     [90, 95, 100], [200, 180, 60], [245, 245, 250]],
    dtype=np.float32,
)

Layers = list[tuple[np.ndarray, np.ndarray]]
"""[(bool mask [h, w], colour float32 [3])]: the whole object first, then details on top."""

ShapeFn = Callable[[np.ndarray, np.ndarray, float, float | None, np.random.Generator], Layers]
"""``shape(along, across, size, width, rng) -> Layers`` (see the module docstring)."""


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


SHAPES: dict[str, ShapeFn] = {
    "airplane": _airplane,
    "bridge": _bridge,
    "storage-tank": _storage_tank,
    "ship": _ship,
    "swimming-pool": _swimming_pool,
    "vehicle": _vehicle,
    "person": _person,
    "wind-mill": _wind_mill,
}
