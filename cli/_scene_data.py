"""The ``fsanet train --scene/--labels`` options as the run's ``scene_data`` settings."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fsanet_cli._common import parse_csv
from fsanet_cli._label_options import label_inputs


def scene_data(
    scenes: list[str], labels: list[str], scene_list: Path | None, *, class_field: str | None,
    classes: str | None, point_box: float | None, bands: str | None, aoi: Path | None,
    val_fraction: float | None, val_aoi: Path | None, val_block: int | None, object_share: float | None,
    chips_per_epoch: int | None, saved: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-safe :class:`~fsanet_geo.train.scene_config.SceneData` dict of the options
    (``--scene``/``--labels`` pairs first, then the rows of ``--scenes``); validated.

    Local paths are made absolute, so that ``--resume`` works from any folder. With ``saved``
    (a resumed run's scene settings) the options left out keep their saved values and the
    scenes, when none are given, stay the saved ones: a resume may relocate moved files.
    """
    from fsanet_geo.train.scene_config import SceneData

    if saved is not None and not (scenes or labels or scene_list):
        sources: list[dict[str, Any]] = list(saved["sources"])
    else:
        found, _ = label_inputs(scenes, labels, scene_list, class_field=None, classes=None, point_box=None)
        sources = [{**dataclasses.asdict(s), "scene": _absolute(s.scene), "labels": _absolute(s.labels)}
                   for s in found]
    given: dict[str, Any] = {
        "class_field": class_field, "classes": parse_csv(classes, str, "--classes"), "point_box": point_box,
        "bands": parse_csv(bands, int, "--bands"), "aoi": None if aoi is None else _absolute(str(aoi)),
        "val_fraction": val_fraction, "val_aoi": None if val_aoi is None else _absolute(str(val_aoi)),
        "val_block": val_block, "object_share": object_share, "chips_per_epoch": chips_per_epoch,
    }
    kept = {k: v for k, v in (saved or {}).items() if k != "sources"}
    data = SceneData(sources=sources, **{**kept, **{k: v for k, v in given.items() if v is not None}})
    return data.to_dict()


def is_plain_path(location: str) -> bool:
    """A file system path: not a URL, not a GDAL virtual path (``/vsicurl/``, ``/vsizip/`` ...)."""
    from fsanet_geo.geo.pixels.remote import is_remote

    return not (is_remote(location) or location.startswith("/vsi"))


def _absolute(location: str) -> str:
    """A local path made absolute; URLs and GDAL virtual paths as given."""
    if not is_plain_path(location) or os.path.isabs(location):
        return location
    return os.path.abspath(location)
