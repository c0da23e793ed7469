"""The records shared by the scene-training modules (labels, split, chips, validation).

Pixel coordinates are scene pixel edges at native resolution: x = column, y = row; a box
covering columns 3..5 has x1 = 3, x2 = 6. Windows are ``(col_off, row_off, width, height)``
in whole pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fsanet_geo.geo.pixels.reader import SceneInfo


@dataclass(frozen=True)
class LabelSource:
    """One scene and its label layer, as the user named them.

    Attributes:
        scene: raster location (local path or remote URL, as ``fsanet detect`` takes).
        labels: vector file (any format pyogrio reads).
        layer: layer name within ``labels`` (None: the first/only layer).
        split: "train" or "val" for the whole scene (a ``split`` column of ``--scenes``),
            None to let the spatial split decide.
    """

    scene: str
    labels: str
    layer: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class LabelOptions:
    """How label features become boxes.

    Attributes:
        class_field: attribute holding the class name; None: every feature is one class named
            after the layer.
        classes: the classes to keep, in label order; None: all found, sorted by name.
        point_box: side in metres (CRS units of a projected scene) of the square box drawn
            around point features; None refuses points.
        bands: 1-based bands to read (None: as ``fsanet detect`` chooses).
        in_channels: the model's channel count, when known.
    """

    class_field: str | None = None
    classes: tuple[str, ...] | None = None
    point_box: float | None = None
    bands: tuple[int, ...] | None = None
    in_channels: int | None = None


@dataclass
class LabelCounts:
    """What happened to the features of one layer (each feature counted once)."""

    read: int = 0
    kept: int = 0
    """Kept whole (includes ``clipped``)."""
    clipped: int = 0
    """Kept, but cut by the raster edge (the labelled area decides by box centre, it does not clip)."""
    outside: int = 0
    """Dropped: no area inside the raster (or the labelled area)."""
    on_nodata: int = 0
    """Dropped: the box covers only nodata pixels."""
    empty: int = 0
    """Dropped: no geometry, an empty one, or a box under 1 px."""
    other_class: int = 0
    """Dropped: class not among ``LabelOptions.classes``."""
    points_refused: int = 0
    """Dropped: points without ``--point-box``."""

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class SceneLabels:
    """One scene's labels in its own pixel grid.

    Attributes:
        source: where they came from.
        info: the scene as :func:`fsanet_geo.geo.pixels.reader.open_scene` validated it (bands chosen).
        boxes: float64 [N, 4] xyxy pixel edges, clipped to the raster.
        labels: int64 [N], index into the label set's ``class_names``.
        labelled_area: shapely (Multi)Polygon in scene pixels where every object is labelled
            (``--aoi``), or None for the whole raster.
        counts: the per-layer report.
    """

    source: LabelSource
    info: SceneInfo
    boxes: np.ndarray
    labels: np.ndarray
    labelled_area: Any = None
    counts: LabelCounts = field(default_factory=LabelCounts)


@dataclass
class LabelSet:
    """Every scene's labels with one class list (label i is ``class_names[i]``)."""

    class_names: tuple[str, ...]
    scenes: list[SceneLabels]

    @property
    def num_objects(self) -> int:
        return int(sum(len(s.boxes) for s in self.scenes))


@dataclass
class SceneSplit:
    """Where training chips and validation blocks of one scene may lie.

    Attributes:
        scene_index: index into ``LabelSet.scenes``.
        train_area: shapely geometry in scene pixels where training chip centres lie; None: the
            scene is validation only.
        val_windows: validation blocks ``(col_off, row_off, width, height)``, scene pixels.
        margin: True: ``train_area`` keeps every chip clear of ``val_windows`` (the chip's reach
            is taken out around them); False (an area too small for that margin): chips may
            overlap a validation block, whose pixels are blanked and boxes dropped in them.
    """

    scene_index: int
    train_area: Any
    val_windows: list[tuple[int, int, int, int]] = field(default_factory=list)
    margin: bool = True
