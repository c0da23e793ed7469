"""One radiometric stretch per scene: computed once, reported, recorded and reusable.

A non-uint8 scene is brought to the 8 bits a model takes by a per-band linear stretch: the
scene's ``percentiles`` (2 and 98 by default, of the valid pixels of the whole scene read
decimated, see :func:`~fsanet_geo.geo.pixels.reader.scene_scaling`) go to the model's *levels*,
the 8-bit values its training images have at those percentiles (recorded in the
checkpoint, see :mod:`fsanet_geo.model.files.imagery`), or to 0 and 255 when the model has none.
Mapping to 0..255 alone would give the model far more contrast than it was trained on (a
16-bit copy of an 8-bit scene whose 2-98% span is 28..175 comes out 1.7x as contrasted).

Every stretch is also an equivalent plain range per band (value -> 0, value -> 255), which
is what ``--scale lo1,hi1,lo2,hi2,...`` and ``--scale-from run.json`` give back.
C = bands.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fsanet_geo.errors import ConfigError, Notice
from fsanet_geo.geo.pixels.scaling import ByteScaling, range_scaling
from fsanet_geo.geo.pixels.remote import location_name


@dataclass(frozen=True)
class SceneStretch:
    """Scene ``source`` values at ``percentiles`` go to 8-bit ``target`` levels, per band.

    Attributes:
        percentiles: (low, high), percent.
        source_low, source_high: [C] raster value units at the percentiles.
        target_low, target_high: [C] 8-bit levels (0..255) they are mapped to.
    """

    percentiles: tuple[float, float]
    source_low: tuple[float, ...]
    source_high: tuple[float, ...]
    target_low: tuple[float, ...]
    target_high: tuple[float, ...]

    def ranges(self) -> list[tuple[float, float]]:
        """Per band the equivalent plain range (value at 0, value at 255), raster units."""
        out = []
        for s_lo, s_hi, t_lo, t_hi in zip(self.source_low, self.source_high, self.target_low, self.target_high):
            per_level = (s_hi - s_lo) / (t_hi - t_lo)
            low = s_lo - t_lo * per_level
            out.append((float(low), float(low + 255.0 * per_level)))
        return out

    def scaling(self) -> ByteScaling:
        """The :class:`ByteScaling` that applies this stretch."""
        ranges = np.array(self.ranges(), np.float64)
        return ByteScaling(ranges[:, 0], ranges[:, 1])

    def scale_values(self) -> list[float]:
        """``[lo1, hi1, lo2, hi2, ...]``: what ``--scale`` takes to reproduce this stretch."""
        return [float(v) for pair in self.ranges() for v in pair]

    def describe(self) -> str:
        """One line: the per-band source ranges and their target levels."""
        lo_p, hi_p = self.percentiles
        bands = "; ".join(
            f"{s_lo:.6g}..{s_hi:.6g} -> {t_lo:.4g}..{t_hi:.4g}"
            for s_lo, s_hi, t_lo, t_hi in zip(self.source_low, self.source_high, self.target_low, self.target_high)
        )
        return f"{lo_p:g}-{hi_p:g}% per band {bands} (--scale {','.join(f'{v:.6g}' for v in self.scale_values())})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "percentiles": list(self.percentiles),
            "source_low": list(self.source_low),
            "source_high": list(self.source_high),
            "target_low": list(self.target_low),
            "target_high": list(self.target_high),
            "scale": self.scale_values(),
        }


def stretch_from_percentiles(
    source_low: Sequence[float],
    source_high: Sequence[float],
    percentiles: Sequence[float],
    levels: Sequence[Sequence[float]] | None = None,
) -> SceneStretch:
    """A stretch from measured scene percentiles and the model's ``levels`` ([C] low, [C] high).

    ``levels`` None maps the percentiles to 0 and 255. Levels for one band are used for all.
    """
    bands = len(source_low)
    if levels is None:
        t_lo, t_hi = [0.0] * bands, [255.0] * bands
    else:
        t_lo, t_hi = [float(v) for v in levels[0]], [float(v) for v in levels[1]]
        if len(t_lo) == 1:
            t_lo, t_hi = t_lo * bands, t_hi * bands
        if len(t_lo) != bands:
            raise ConfigError(f"the model's levels are for {len(t_lo)} band(s), the scene has {bands}")
    pct = (float(percentiles[0]), float(percentiles[1]))
    return SceneStretch(pct, tuple(map(float, source_low)), tuple(map(float, source_high)), tuple(t_lo), tuple(t_hi))


def scale_from_record(path: str | os.PathLike[str]) -> tuple[float, ...]:
    """The ``--scale`` values recorded in a run record (``<output>.run.json``) of ``fsanet detect``.

    Raises :class:`ConfigError` when the file is missing, not a run record, has no stretch,
    or holds different stretches for several scenes.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--scale-from: {p} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--scale-from: {p} is not a readable JSON run record ({exc})") from None
    scenes = data.get("scenes") if isinstance(data, dict) else None
    if not isinstance(scenes, list):
        raise ConfigError(f"--scale-from: {p} is not a run record of fsanet detect (no 'scenes' list)")
    found = {tuple(s["stretch"]["scale"]) for s in scenes if isinstance(s, dict) and s.get("stretch")}
    if not found:
        raise ConfigError(f"--scale-from: {p} records no stretch (its scenes were 8-bit)")
    if len(found) > 1:
        raise ConfigError(f"--scale-from: {p} holds {len(found)} different stretches: pass one with --scale")
    return tuple(float(v) for v in found.pop())


def image_levels(images: Iterable[np.ndarray], percentiles: Sequence[float] = (2.0, 98.0),
                 max_pixels: int = 65536) -> tuple[list[float], list[float]]:
    """The 8-bit levels of a set of training images: per band the ``percentiles`` of all pixels.

    Args:
        images: uint8 [C, H, W] arrays (each decimated to at most ``max_pixels`` pixels).
    Returns:
        ([C] low levels, [C] high levels).
    """
    parts = []
    for image in images:
        step = max(1, int(np.ceil(np.sqrt(image.shape[1] * image.shape[2] / max_pixels))))
        parts.append(image[:, ::step, ::step].reshape(image.shape[0], -1))
    if not parts:
        raise ConfigError("no images to measure levels from")
    values = np.concatenate(parts, axis=1).astype(np.float64)
    low, high = np.percentile(values, [float(percentiles[0]), float(percentiles[1])], axis=1)
    return [float(v) for v in low], [float(v) for v in high]


def measure_stretch(info: Any, percentiles: Sequence[float] = (2.0, 98.0),
                    levels: Sequence[Sequence[float]] | None = None) -> SceneStretch | None:
    """The stretch of scene ``info`` (a :class:`~fsanet_geo.geo.pixels.reader.SceneInfo`); None for uint8.

    The percentiles come from one decimated read of the whole scene (overviews when present),
    nodata and masked pixels excluded; ``levels`` as in :func:`stretch_from_percentiles`.
    """
    from fsanet_geo.geo.pixels.reader import scene_scaling

    measured = scene_scaling(info, percentiles=percentiles)
    if measured is None:
        return None
    return stretch_from_percentiles(measured.low, measured.high, percentiles, levels)


@dataclass(frozen=True)
class ScaleChoice:
    """How one scene is brought to 8 bits: ``scaling`` (None: uint8 as it is), from the user's
    ``--scale`` (``user``) or from the measured ``stretch``."""

    scaling: ByteScaling | None
    stretch: SceneStretch | None = None
    user: bool = False


def choose_scaling(info: Any, settings: Any, imagery: Any = None) -> ScaleChoice:
    """The scaling of scene ``info`` under :class:`~fsanet_geo.geo.settings.DetectSettings`
    ``settings``: ``scale`` when given, else the measured stretch to the levels of
    ``imagery`` (a model's :class:`~fsanet_geo.model.files.imagery.ImageryProfile`, with
    ``stretch_to="model"``), reported once as a :class:`Notice`."""
    if settings.scale is not None:
        return ScaleChoice(range_scaling(settings.scale, len(info.bands)), user=True)
    levels = imagery.levels if imagery is not None and settings.stretch_to == "model" else None
    stretch = measure_stretch(info, settings.percentiles, levels)
    if stretch is None:
        return ScaleChoice(None)
    warnings.warn(f"{location_name(info.path)} is {info.dtype}, stretched to 8 bits by {stretch.describe()}", Notice,
                  stacklevel=3)
    return ScaleChoice(stretch.scaling(), stretch)
