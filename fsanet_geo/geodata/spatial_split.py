"""Validation without leakage: whole spatial blocks of the labelled area are held out.

The labelled area of a scene (``SceneLabels.labelled_area``, else the whole raster) is cut
into a grid of ``block_size`` px square blocks anchored at pixel (0, 0); a seeded share of
the blocks that hold labelled area becomes validation windows (each block clipped to the
raster and to the bounds of the labelled area inside it). The pick is by blocks, uniform
among the blocks holding labelled area, so ``val_fraction`` is a share of blocks (of area,
up to the blocks cut by the area's edge), not of objects: objects cluster, area does not.

Training chips are placed by :func:`chip_window` from a centre pixel; ``train_area`` is the
labelled area minus every validation window grown by the chip's reach (see
:func:`forbidden_box`), so that the chip of ANY pixel whose centre lies in ``train_area``
shares no pixel with a validation window: the guarantee lies in the geometry, not in the
sampler. Where the area is too small for that margin (``margin=False``, chosen by
:mod:`fsanet_geo.geodata.split_plan`), ``train_area`` is the labelled area minus the windows
themselves and the chips blank the validation pixels they overlap instead. A block cut by the
area's edge to under a quarter of the block side along an axis is never held out (a sliver
holds too little to validate on). Windows are ``(col_off, row_off, width, height)`` in scene
pixels; x = column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.types import LabelSet, SceneLabels, SceneSplit

Window = tuple[int, int, int, int]
"""(col_off, row_off, width, height), whole scene pixels."""

SLIVER = 4
"""A block narrower than ``block_size / SLIVER`` along an axis (cut by the area's edge) is not held out."""


def chip_side(chip_size: int, width: int, height: int) -> tuple[int, int]:
    """(chip width, chip height): ``chip_size`` per axis, the whole axis when the scene is smaller."""
    return min(chip_size, width), min(chip_size, height)


def chip_window(col: int, row: int, chip_size: int, width: int, height: int) -> Window:
    """The chip centred on pixel (``col``, ``row``) of a ``width`` x ``height`` scene.

    Along an axis shorter than ``chip_size`` the chip is the whole axis (offset 0); otherwise
    it starts ``chip_size // 2`` before the centre pixel and is NOT moved back inside the
    raster (what lies outside is read as zeros), so that its place depends on the centre only.
    """
    cw, ch = chip_side(chip_size, width, height)
    col_off = 0 if cw == width else col - cw // 2
    row_off = 0 if ch == height else row - ch // 2
    return col_off, row_off, cw, ch


def forbidden_box(window: Window, chip_size: int, width: int, height: int) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2): the pixel-centre positions whose :func:`chip_window` meets ``window``.

    A chip of side s centred on pixel k spans [k - s//2, k - s//2 + s); it meets [v0, v1)
    exactly for k in [v0 - s + s//2 + 1, v1 + s//2 - 1], whose pixel centres lie within
    [v0 - s + s//2 + 1, v1 + s//2] with half a pixel to spare. An axis the chip covers whole
    forbids every position along it.
    """
    cw, ch = chip_side(chip_size, width, height)
    col, row, w, h = window

    def span(v0: int, v1: int, side: int, length: int) -> tuple[float, float]:
        if side == length:
            return -1.0, length + 1.0
        half = side // 2
        return float(v0 - side + half + 1), float(v1 + half)

    x1, x2 = span(col, col + w, cw, width)
    y1, y2 = span(row, row + h, ch, height)
    return x1, y1, x2, y2


def labelled_area(scene: SceneLabels) -> shapely.Geometry:
    """The scene's labelled area in pixels: ``labelled_area`` clipped to the raster, else the raster."""
    raster = shapely.box(0, 0, scene.info.width, scene.info.height)
    if scene.labelled_area is None:
        return raster
    return polygonal(shapely.intersection(scene.labelled_area, raster))


def polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygons of ``geometry`` (an intersection along a shared edge adds lines and points)."""
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def block_windows(area: shapely.Geometry, width: int, height: int, block_size: int) -> list[Window]:
    """The blocks of the ``block_size`` grid holding part of ``area`` (positive area), each
    clipped to the raster and to the bounds of the area inside it; row by row."""
    out: list[Window] = []
    shapely.prepare(area)
    for row in range(0, height, block_size):
        for col in range(0, width, block_size):
            block = shapely.box(col, row, min(col + block_size, width), min(row + block_size, height))
            part = shapely.intersection(area, block)
            if part.is_empty or part.area <= 0:
                continue
            out.append(bounds_window(part.bounds, width, height))
    return out


def bounds_window(bounds: Sequence[float], width: int, height: int) -> Window:
    """The whole-pixel window covering ``bounds`` (x1, y1, x2, y2), clipped to the raster."""
    x1, y1, x2, y2 = bounds
    c0, r0 = max(0, math.floor(x1)), max(0, math.floor(y1))
    c1, r1 = min(width, math.ceil(x2)), min(height, math.ceil(y2))
    return c0, r0, max(0, c1 - c0), max(0, r1 - r0)


def train_area_of(area: shapely.Geometry, val_windows: Sequence[Window], chip_size: int,
                  width: int, height: int, margin: bool = True) -> shapely.Geometry:
    """``area`` minus the :func:`forbidden_box` of every validation window (``margin`` False: minus
    the windows themselves); None when nothing is left."""
    if val_windows:
        boxes = [forbidden_box(w, chip_size, width, height) if margin else (w[0], w[1], w[0] + w[2], w[1] + w[3])
                 for w in val_windows]
        forbidden = shapely.union_all([shapely.box(*b) for b in boxes])
        area = polygonal(shapely.difference(area, forbidden))
    return None if area.is_empty or area.area <= 0 else area


def spatial_split(
    label_set: LabelSet,
    *,
    val_fraction: float,
    block_size: int,
    seed: int = 0,
    val_aoi: str | None = None,
    chip_size: int,
    margin: bool = True,
) -> list[SceneSplit]:
    """Where training chips and validation blocks of every scene lie (one :class:`SceneSplit` each).

    Scenes whose source says ``split="val"`` are validation only (their labelled area tiled in
    blocks); ``split="train"`` scenes never validate. Of the other scenes' blocks holding
    labelled area, ``round(val_fraction * count)`` (at least one when ``val_fraction > 0``)
    are drawn with ``seed`` among those not cut to a sliver; with ``val_aoi`` (a polygon file) the validation windows are the
    bounding windows of its polygons in each scene instead and ``val_fraction`` is not used.

    Raises:
        ConfigError: bad fraction or sizes, no block left for training, or none for validation
            when one was asked for.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if block_size < 1 or chip_size < 1:
        raise ConfigError(f"block and chip sizes must be >= 1 px, got {block_size} and {chip_size}")
    areas = [labelled_area(s) for s in label_set.scenes]
    vals: list[list[Window]] = [[] for _ in label_set.scenes]
    free: list[tuple[int, Window]] = []
    for i, (scene, area) in enumerate(zip(label_set.scenes, areas)):
        blocks = block_windows(area, scene.info.width, scene.info.height, block_size)
        if scene.source.split == "val":
            vals[i] = blocks
        elif scene.source.split is None:
            free.extend((i, w) for w in blocks)
    if val_aoi is not None:
        _aoi_windows(label_set, val_aoi, vals)
    elif val_fraction > 0 and free:
        n_val = max(1, round(val_fraction * len(free)))
        eligible = [k for k, (_, w) in enumerate(free) if min(w[2], w[3]) * SLIVER >= block_size] or list(range(len(free)))
        if n_val >= len(free) or n_val > len(eligible):
            raise ConfigError(
                f"--val-fraction {val_fraction} of {len(free)} block(s) of {block_size} px leaves none for "
                "training: use a smaller --val-block or --val-fraction")
        picked = np.random.default_rng(seed).choice(len(eligible), size=n_val, replace=False)
        for k in sorted(eligible[int(p)] for p in picked):
            vals[free[k][0]].append(free[k][1])
    if (val_fraction > 0 or val_aoi is not None) and not any(vals):
        if val_aoi:
            where = f"--val-aoi {val_aoi} covers no scene that may be held out"
        elif all(s.source.split == "train" for s in label_set.scenes):
            where = "every scene's split is 'train'"
        else:
            where = "no scene has labelled area to hold out"
        raise ConfigError(f"no validation block: {where}")
    splits = []
    for i, (scene, area) in enumerate(zip(label_set.scenes, areas)):
        train = None if scene.source.split == "val" else train_area_of(
            area, vals[i], chip_size, scene.info.width, scene.info.height, margin)
        splits.append(SceneSplit(scene_index=i, train_area=train, val_windows=vals[i], margin=margin))
    if all(s.source.split == "val" for s in label_set.scenes):
        raise ConfigError("no training area: every scene's split is 'val' (give one scene the split train or "
                          "an empty one)")
    if all(s.train_area is None for s in splits):
        raise ConfigError("no training area is left once the validation blocks (and their chip margin) are "
                          "taken out: use a smaller --val-fraction or --val-block")
    return splits


def _aoi_windows(label_set: LabelSet, val_aoi: str, vals: list[list[Window]]) -> None:
    """Add the bounding windows of the polygons of ``val_aoi`` to each non-"train" scene's ``vals``."""
    from fsanet_geo.geo.pixels.aoi import load_aoi

    try:
        aoi = load_aoi(val_aoi)
    except ConfigError as exc:  # its message says "area of interest": name the option
        raise ConfigError(f"--val-aoi: {exc}") from exc
    for i, scene in enumerate(label_set.scenes):
        if scene.source.split is not None:
            continue
        info = scene.info
        pixels = aoi.in_scene(info.crs, info.transform).geometry
        for part in shapely.get_parts(pixels):
            window = bounds_window(part.bounds, info.width, info.height)
            if window[2] > 0 and window[3] > 0:
                vals[i].append(window)
