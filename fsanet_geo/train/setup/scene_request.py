"""The scenes and vector labels a run is asked to train on, as its ``scene_data`` settings.

Units: ``point_box`` metres, ``val_block`` pixels (see :mod:`fsanet_geo.train.scene_config`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.option_values import parse_csv

if TYPE_CHECKING:
    from fsanet_geo.train.config import TrainConfig

_SOURCES = ("scenes", "labels", "scene_list")


@dataclass(frozen=True)
class SceneOptions:
    """``--scene``/``--labels`` pairs, a ``--scenes`` list and their settings; None = not given.

    ``classes`` and ``bands`` are the comma-separated text of the options (``car,truck``,
    ``3,2,1``); paths are local files, URLs or GDAL virtual paths.
    """

    scenes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scene_list: Path | None = None
    class_field: str | None = None
    classes: str | None = None
    point_box: float | None = None
    bands: str | None = None
    aoi: Path | None = None
    val_fraction: float | None = None
    val_aoi: Path | None = None
    val_block: int | None = None
    object_share: float | None = None
    chips_per_epoch: int | None = None

    @property
    def named(self) -> bool:
        """Scenes are named (``--scene``, ``--labels`` or ``--scenes``)."""
        return bool(self.scenes or self.labels or self.scene_list)

    def settings(self) -> dict[str, Any]:
        """The settings (every field but the scenes themselves) by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _SOURCES}

    def given_flags(self) -> list[str]:
        """``--class-field``-style names of the settings given."""
        return [f"--{k.replace('_', '-')}" for k, v in self.settings().items() if v is not None]


def scene_data(options: SceneOptions, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-safe :class:`~fsanet_geo.train.scene_config.SceneData` dict of ``options``
    (``--scene``/``--labels`` pairs first, then the rows of ``--scenes``); validated.

    Local paths are made absolute, so that ``--resume`` works from any folder. With ``saved``
    (a resumed run's scene settings) the settings left out keep their saved values and the
    scenes, when none are given, stay the saved ones: a resume may relocate moved files.
    """
    from fsanet_geo.train.scene_config import SceneData

    if saved is not None and not options.named:
        sources: list[dict[str, Any]] = list(saved["sources"])
    else:
        sources = [{**dataclasses.asdict(s), "scene": _absolute(s.scene), "labels": _absolute(s.labels)}
                   for s in _label_sources(options)]
    given = {**options.settings(), "classes": parse_csv(options.classes, str, "--classes"),
             "bands": parse_csv(options.bands, int, "--bands"),
             "aoi": None if options.aoi is None else _absolute(str(options.aoi)),
             "val_aoi": None if options.val_aoi is None else _absolute(str(options.val_aoi))}
    kept = {k: v for k, v in (saved or {}).items() if k != "sources"}
    data = SceneData(sources=sources, **{**kept, **{k: v for k, v in given.items() if v is not None}})
    return data.to_dict()


def resumed_scene_data(work_dir: Path, options: SceneOptions) -> dict[str, Any]:
    """The scene settings of the run in ``work_dir`` with ``options`` given on ``--resume``
    (new places of moved files; a changed fixed setting is refused when the run starts)."""
    from fsanet_geo.train.workdir import read_saved_config

    saved = read_saved_config(work_dir)
    if saved.scene_data is None:
        raise ConfigError(f"--scene, --labels, --scenes and their options do not apply to --resume of {work_dir}: "
                          f"it trains on {saved.dataset}, not on scenes")
    return scene_data(options, saved=saved.scene_data)


def check_moved(config: TrainConfig) -> None:
    """A resumed scene run whose local scene or labels file is gone: say how to give its new place."""
    for source in (config.scenes.sources if config.scene_data else []):
        for kind in ("scene", "labels"):
            path = source[kind]
            if is_plain_path(path) and not Path(path).exists():
                raise DatasetError(f"cannot resume {config.work_dir}: its {kind} {path} does not exist; if it "
                                   "moved, give every scene's new place with --scene/--labels or --scenes")


def is_plain_path(location: str) -> bool:
    """A file system path: not a URL, not a GDAL virtual path (``/vsicurl/``, ``/vsizip/`` ...)."""
    from fsanet_geo.geo.pixels.remote import is_remote

    return not (is_remote(location) or location.startswith("/vsi"))


def _label_sources(options: SceneOptions) -> list[Any]:
    """The :class:`~fsanet_geo.geodata.types.LabelSource` s: the pairs, then the list's rows."""
    from fsanet_geo.geodata.sources import pair_sources, read_scene_list

    sources = pair_sources(options.scenes, options.labels)
    if options.scene_list is not None:
        sources += read_scene_list(options.scene_list)
    if not sources:
        raise ConfigError("name the scenes with --scene A.tif --labels A.gpkg or --scenes list.csv")
    return sources


def _absolute(location: str) -> str:
    """A local path made absolute; URLs and GDAL virtual paths as given."""
    if not is_plain_path(location) or os.path.isabs(location):
        return location
    return os.path.abspath(location)
