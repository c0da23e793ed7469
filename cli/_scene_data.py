"""The ``fsanet train --scene/--labels`` options as the run's ``scene_data`` settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsanet_geo.errors import ConfigError


def comma_list(value: str | None, flag: str) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]`` (None stays None); an empty item is a ConfigError naming ``flag``."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    if not all(items):
        raise ConfigError(f"{flag} {value!r} has an empty item: give names separated by commas")
    return items


def band_list(value: str | None) -> list[int] | None:
    """``"4,3,2"`` -> ``[4, 3, 2]``; anything but positive integers is a ConfigError."""
    items = comma_list(value, "--bands")
    if items is None:
        return None
    try:
        bands = [int(v) for v in items]
    except ValueError:
        raise ConfigError(f"--bands {value!r}: give 1-based band numbers, e.g. 3,2,1") from None
    if any(b < 1 for b in bands):
        raise ConfigError(f"--bands {value!r}: bands are numbered from 1")
    return bands


def scene_data(
    scenes: list[str], labels: list[str], scene_list: Path | None, *, class_field: str | None,
    classes: str | None, point_box: float | None, bands: str | None, aoi: Path | None,
    val_fraction: float | None, val_aoi: Path | None, val_block: int | None, object_share: float | None,
    chips_per_epoch: int | None,
) -> dict[str, Any]:
    """The JSON-safe :class:`~fsanet_geo.train.scene_config.SceneData` dict of the options
    (``--scene``/``--labels`` pairs first, then the rows of ``--scenes``); validated."""
    import dataclasses

    from fsanet_geo.geodata.sources import pair_sources, read_scene_list
    from fsanet_geo.train.scene_config import SceneData

    sources = list(pair_sources(scenes, labels)) if (scenes or labels) else []
    if scene_list is not None:
        sources += read_scene_list(scene_list)
    given: dict[str, Any] = {
        "class_field": class_field, "classes": comma_list(classes, "--classes"), "point_box": point_box,
        "bands": band_list(bands), "aoi": None if aoi is None else str(aoi), "val_fraction": val_fraction,
        "val_aoi": None if val_aoi is None else str(val_aoi), "val_block": val_block, "object_share": object_share,
        "chips_per_epoch": chips_per_epoch,
    }
    data = SceneData(sources=[dataclasses.asdict(s) for s in sources],
                     **{k: v for k, v in given.items() if v is not None})
    return data.to_dict()
