"""Chip size, validation blocks and chip margin fitted to the labelled area (scene training defaults).

The defaults suit a large scene: chips of the model's input size (800 px for most presets),
validation blocks of two chips, and a chip margin (no training chip touches a validation
block). A small labelled area (a 400 px aerial tile, a 1200 x 1000 px crop) cannot hold them:
one 1600 px block is the whole scene. :func:`plan_split` fits them, in this order:

1. chip: the model's input size, or half the short side of the largest training area
   (rounded down to 32 px, at least 64) when that is smaller, unless the user set the size;
2. validation block: ``--val-block``, else two chips, else (fewer than :data:`MIN_VAL_BLOCKS`
   such blocks in the area) a third of the short side, so that the area holds 9 or more;
3. margin: kept when the training area it leaves is at least half of what the validation
   blocks leave (as on a large scene); otherwise dropped, and chips blank the validation
   pixels they overlap (:class:`~fsanet_geo.geodata.chips.SceneChipDataset`).

Every size is in scene pixels. A refusal names sizes that work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import shapely

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.spatial_split import block_windows, labelled_area, spatial_split
from fsanet_geo.geodata.types import LabelSet, SceneSplit

VAL_BLOCK_CHIPS = 2
"""Validation block side on a large area, in training chips (chips of 800 px: 1600 px blocks)."""
MIN_CHIP = 64
"""The smallest chip side a fitted plan chooses (pixels)."""
MIN_VAL_BLOCKS = 5
"""Blocks of two chips an area must hold for them to be the validation blocks."""
BLOCKS_ACROSS = 3
"""A small area's short side is cut into this many validation blocks."""
MARGIN_SHARE = 0.5
"""The chip margin is kept when the training area with it is at least this share of the area
left by the validation blocks alone."""


@dataclass(frozen=True)
class SplitPlan:
    """The chip side and validation blocks of a scene run, and where chips may lie.

    Attributes:
        chip_size: training chip side (pixels; a scene smaller along an axis gives the whole axis).
        block_size: validation block side (pixels); 0 where ``--val-aoi`` names the validation areas.
        splits: one :class:`SceneSplit` per scene.
        margin: whether chips keep clear of the validation blocks (else they blank them).
        fitted: names of the settings fitted to the area (``chip``, ``block``, ``margin``).
        train_share: training area / labelled area of the scenes that train (0..1).
    """

    chip_size: int
    block_size: int
    splits: list[SceneSplit]
    margin: bool
    fitted: tuple[str, ...] = ()
    train_share: float = 1.0

    def describe(self) -> str:
        """One phrase for the run's first lines: what was chosen, and why when it was fitted."""
        vals = sum(len(s.val_windows) for s in self.splits)
        text = f"chips of {self.chip_size} px"
        if vals and self.block_size:
            text += f", validation blocks of {self.block_size} px"
            if not self.margin:
                text += " (blanked in the training chips that overlap them)"
        if self.fitted:
            text += f"; fitted to the labelled area: {', '.join(self.fitted)}"
        return text


def plan_split(label_set: LabelSet, *, chip_size: int, chip_fixed: bool, val_fraction: float,
               val_block: int | None, seed: int, val_aoi: str | None) -> SplitPlan:
    """The :class:`SplitPlan` of ``label_set`` (see the module docstring).

    Args:
        chip_size: the model's input size (pixels).
        chip_fixed: the user set the chip size (``--input-size``): it is kept.
        val_fraction: share of the blocks held out (0: no validation).
        val_block: the user's block side (pixels), None to fit it.
        seed, val_aoi: as :func:`~fsanet_geo.geodata.spatial_split.spatial_split` takes them.

    Raises:
        ConfigError: no training area is left even without a margin; the message names a
            ``--val-block`` that leaves some, and ``--val-fraction 0``.
    """
    training = [s for s in label_set.scenes if s.source.split != "val"] or list(label_set.scenes)
    areas = [labelled_area(s) for s in training]
    side = max((_short_side(a) for a in areas), default=0)
    fitted = []
    chip = chip_size
    if not chip_fixed and 0 < side < 2 * chip_size:
        chip = min(chip_size, max(MIN_CHIP, (side // 2) // 32 * 32))
        fitted.append("chip")
    block = val_block
    if block is None and not val_aoi:
        block = block_side(None, chip)
        held = [s for s in training if s.source.split is None]
        count = sum(len(block_windows(labelled_area(s), s.info.width, s.info.height, block)) for s in held)
        if side > 0 and count < MIN_VAL_BLOCKS:
            block = max(32, math.ceil(side / BLOCKS_ACROSS))
            fitted.append("block")
    block = block or block_side(None, chip)  # unused with --val-aoi
    total = sum(a.area for a in areas) or 1.0

    def split(margin: bool) -> tuple[list[SceneSplit], float]:
        splits = spatial_split(label_set, val_fraction=val_fraction, block_size=block, seed=seed,
                               val_aoi=val_aoi, chip_size=chip, margin=margin)
        left = sum(s.train_area.area for s in splits if s.train_area is not None)
        return splits, left / total

    try:
        bare, bare_share = split(False)
    except ConfigError as exc:
        raise _with_advice(exc, side, val_block) from exc
    if not any(s.val_windows for s in bare):
        return SplitPlan(chip, block if not val_aoi else 0, bare, True, tuple(fitted), bare_share)  # nothing held out
    try:
        kept, kept_share = split(True)
    except ConfigError:
        kept, kept_share = [], 0.0
    shown = 0 if val_aoi else block
    if kept and kept_share >= MARGIN_SHARE * bare_share:
        return SplitPlan(chip, shown, kept, True, tuple(fitted), kept_share)
    return SplitPlan(chip, shown, bare, False, (*fitted, "margin"), bare_share)


def block_side(val_block: int | None, chip: int) -> int:
    """The user's block side, else :data:`VAL_BLOCK_CHIPS` chips (before any fitting), pixels."""
    return val_block or VAL_BLOCK_CHIPS * chip


def _short_side(area: shapely.Geometry) -> int:
    """The short side of ``area``'s bounds, whole pixels (0 for an empty area)."""
    if area.is_empty:
        return 0
    x1, y1, x2, y2 = area.bounds
    return int(min(x2 - x1, y2 - y1))


def _with_advice(exc: ConfigError, side: int, val_block: int | None) -> ConfigError:
    """``exc`` with advice that works on this area: a block side that leaves training blocks
    (when the user's is larger), or no validation at all."""
    message = str(exc).split(": use a smaller", 1)[0]
    if "leaves none for training" not in message and "no training area is left" not in message:
        return exc
    fits = max(32, math.ceil(side / BLOCKS_ACROSS)) if side else None
    advice = []
    if fits is not None and (val_block is None or val_block > fits):
        advice.append(f"--val-block {fits}")
    advice.append("--val-fraction 0 (no validation: the score threshold then stays uncalibrated)")
    return ConfigError(f"{message}: use {' or '.join(advice)}")
