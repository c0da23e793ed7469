"""The ``fsanet train --scene/--labels`` options as the run's ``scene_data`` settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fsanet_cli._label_options import label_inputs


def scene_data(
    scenes: list[str], labels: list[str], scene_list: Path | None, *, class_field: str | None,
    classes: str | None, point_box: float | None, bands: str | None, aoi: Path | None,
    val_fraction: float | None, val_aoi: Path | None, val_block: int | None, object_share: float | None,
    chips_per_epoch: int | None,
) -> dict[str, Any]:
    """The JSON-safe :class:`~fsanet_geo.train.scene_config.SceneData` dict of the options
    (``--scene``/``--labels`` pairs first, then the rows of ``--scenes``); validated."""
    from fsanet_geo.train.scene_config import SceneData

    sources, options = label_inputs(scenes, labels, scene_list, class_field=class_field, classes=classes,
                                    point_box=point_box, bands=bands)
    given: dict[str, Any] = {
        "class_field": options.class_field, "classes": list(options.classes) if options.classes else None,
        "point_box": options.point_box, "bands": list(options.bands) if options.bands else None,
        "aoi": None if aoi is None else str(aoi), "val_fraction": val_fraction,
        "val_aoi": None if val_aoi is None else str(val_aoi), "val_block": val_block, "object_share": object_share,
        "chips_per_epoch": chips_per_epoch,
    }
    data = SceneData(sources=[dataclasses.asdict(s) for s in sources],
                     **{k: v for k, v in given.items() if v is not None})
    return data.to_dict()
