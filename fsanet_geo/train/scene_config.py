"""The settings of a run trained on GeoTIFF scenes + vector labels (``fsanet train --scene``).

Kept in :class:`~fsanet_geo.train.config.TrainConfig` as the JSON-safe dict ``scene_data``
(``dataset="scenes"``); :class:`SceneData` is its typed view. Units: ``point_box`` metres,
``val_block`` and ``chips_per_epoch`` pixels and chips.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsanet_geo.config_fields import check_known_fields
from fsanet_geo.errors import ConfigError

DEFAULT_VAL_FRACTION = 0.2
"""Share of the labelled area held out for validation, in whole spatial blocks."""

SCENE_RESUME_FIXED = ("class_field", "classes", "point_box", "bands", "aoi", "val_fraction", "val_aoi",
                      "val_block", "object_share", "chips_per_epoch")
"""Scene settings a resumed run must keep (the label files themselves may move)."""


@dataclass
class SceneData:
    """Where a scene-trained run's data comes from and how it is cut.

    Attributes:
        sources: one dict per scene: ``scene``, ``labels`` (paths or URLs), optional
            ``layer`` and ``split`` ("train"/"val"), as :class:`~fsanet_geo.geodata.types.LabelSource`.
        class_field: label attribute naming the class (None: one class named after the layer).
        classes: classes to keep, in label order (None: every class found, sorted).
        point_box: square box side drawn around point labels, metres (None: points refused).
        bands: 1-based raster bands (None: as ``fsanet detect`` picks them).
        aoi: vector file of the exhaustively labelled area (None: the whole rasters).
        val_fraction: share of the labelled area held out as validation blocks (0: none).
        val_aoi: vector file naming the validation area instead of ``val_fraction``.
        val_block: validation block side in pixels (None: fitted, two chips on a large area:
            :mod:`fsanet_geo.geodata.split_plan`).
        object_share: share of training chips centred on a labelled object (the rest uniform).
        chips_per_epoch: chips per epoch (None: the sampler's rule from the training area).
    """

    sources: list[dict[str, Any]] = field(default_factory=list)
    class_field: str | None = None
    classes: list[str] | None = None
    point_box: float | None = None
    bands: list[int] | None = None
    aoi: str | None = None
    val_fraction: float = DEFAULT_VAL_FRACTION
    val_aoi: str | None = None
    val_block: int | None = None
    object_share: float = 0.5
    chips_per_epoch: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        if not self.sources:
            raise ConfigError("training on scenes needs at least one --scene with its --labels")
        for i, source in enumerate(self.sources):
            if not source.get("scene") or not source.get("labels"):
                raise ConfigError(f"scene {i + 1} needs both a scene and a labels file")
            if source.get("split") not in (None, "", "train", "val"):
                raise ConfigError(f"scene {source['scene']}: split must be train or val, got {source['split']!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.object_share <= 1.0:
            raise ConfigError(f"--object-share must be in [0, 1], got {self.object_share}")
        if self.point_box is not None and not (math.isfinite(self.point_box) and self.point_box > 0):
            raise ConfigError(f"--point-box is a side in metres > 0, got {self.point_box}")
        if self.val_block is not None and self.val_block < 32:
            raise ConfigError(f"--val-block must be >= 32 px, got {self.val_block}")
        if self.chips_per_epoch is not None and self.chips_per_epoch < 1:
            raise ConfigError(f"--chips-per-epoch must be >= 1, got {self.chips_per_epoch}")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"--classes names a class twice: {','.join(self.classes)}")

    @property
    def has_val_scenes(self) -> bool:
        return any(s.get("split") == "val" for s in self.sources)

    @property
    def validates(self) -> bool:
        """Whether any validation blocks are asked for."""
        return self.val_fraction > 0 or self.val_aoi is not None or self.has_val_scenes

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneData:
        check_known_fields(cls, data, "scene settings")
        return cls(**dict(data))

    def mismatches(self, saved: SceneData) -> list[str]:
        """Names of :data:`SCENE_RESUME_FIXED` settings that differ from ``saved``."""
        return [name for name in SCENE_RESUME_FIXED if getattr(self, name) != getattr(saved, name)]
