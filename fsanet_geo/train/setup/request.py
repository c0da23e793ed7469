"""What ``fsanet train`` was asked (:class:`TrainRequest`) and the run's config from it
(:func:`train_config`): the data source checked, defaults chosen, a resumed run read back.

The defaults of a new run: the preset of ``--init-weights`` (else ``fsanet_r50``), its recipe
(:meth:`TrainConfig.for_preset`), AI-TOD, the layout's default splits, ``work_dirs/<model>``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsanet_geo.errors import ConfigError, Notice
from fsanet_geo.io_utils import check_writable_folder
from fsanet_geo.train.setup.scene_request import SceneOptions

if TYPE_CHECKING:
    from fsanet_geo.train.config import TrainConfig


@dataclass(frozen=True)
class TrainRequest:
    """A training run as asked; None (or empty) is "not given": the recipe, the data's layout
    or, on ``resume``, the saved run decides.

    Attributes:
        fields: :class:`TrainConfig` fields by name (``dataset``, ``data_root``, ``epochs``,
            ``lr``, ``device``, ...); paths as :class:`Path` or text; ``pretrained_backbone``
            is ``"imagenet"`` or a local weights file.
        scenes: the scenes and vector labels to train on, and their settings.
        model: the preset name; work_dir: the run's folder.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    scenes: SceneOptions = field(default_factory=SceneOptions)
    model: str | None = None
    work_dir: Path | None = None
    resume: bool = False
    overwrite: bool = False


def train_config(request: TrainRequest) -> TrainConfig:
    """The checked :class:`TrainConfig` of ``request`` (a new run, or the saved one resumed).

    Raises:
        ConfigError: a bad ``pretrained_backbone``, scene settings without scenes, scenes with
            another data source, ``resume`` without ``work_dir``, an unknown preset.
        DatasetError: a resumed scene run whose local files are gone.
    """
    from fsanet_geo.model.files.preset_choice import preset_for_run
    from fsanet_geo.train.config import TrainConfig
    from fsanet_geo.train.setup.scene_request import check_moved, resumed_scene_data, scene_data
    from fsanet_geo.train.workdir import resumed_config

    given = dict(request.fields)
    if given.get("pretrained_backbone") is not None:
        given["pretrained_backbone"] = _pretrained(given["pretrained_backbone"])
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}
    scenes = request.scenes
    if not scenes.named and not request.resume:
        flags = scenes.given_flags()
        if flags:  # they would be ignored on AI-TOD / COCO data
            verb = "needs" if len(flags) == 1 else "need"
            raise ConfigError(f"{', '.join(flags)} {verb} scenes with labels (--scene/--labels or --scenes)")
    if scenes.named and not request.resume:
        given["dataset"] = _scenes_dataset(given)
        given["scene_data"] = scene_data(scenes)
    if request.resume:
        if request.work_dir is None:
            raise ConfigError("--resume needs --work-dir (the folder of the run to continue)")
        if scenes.named or scenes.given_flags():
            given["scene_data"] = resumed_scene_data(request.work_dir, scenes)
        config = resumed_config(request.work_dir, model=request.model, **given)
        check_moved(config)
        return config
    scratch = given.get("dataset") == "scenes" and not given.get("pretrained_backbone")
    name = preset_for_run(request.model, given.get("init_weights"), scratch=scratch)
    _check_preset(name)
    given.setdefault("dataset", "aitod")
    if given["dataset"] == "aitod" and "data_root" in given:
        from fsanet_geo.data.aitod_splits import default_splits

        given["train_split"], given["val_split"] = default_splits(
            Path(given["data_root"]), given.get("train_split"), given.get("val_split"))
    given["work_dir"] = str(request.work_dir or Path("work_dirs") / name)
    check_writable_folder(given["work_dir"], label=f"--work-dir {given['work_dir']}")  # before the labels load
    if scratch and request.model is None and not given.get("init_weights"):
        warnings.warn(f"model {name}, from random weights (fsanet_r50 needs --pretrained-backbone imagenet; "
                      "--init-weights CKPT fine-tunes a trained model)", Notice, stacklevel=2)
    return TrainConfig.for_preset(name, overwrite=request.overwrite, **given)


def _scenes_dataset(given: dict[str, Any]) -> str:
    """``"scenes"``, or a ConfigError when another data source is given too."""
    if any(k in given for k in ("data_root", "dataset", "train_ann")):
        raise ConfigError("--scene/--scenes train on rasters + vector labels: leave out --data-root, --ann and --dataset")
    return "scenes"


def _pretrained(value: str) -> str:
    """``"imagenet"`` (any case) or an existing weights file."""
    if value.lower() == "imagenet":
        return "imagenet"
    if not Path(value).is_file():
        raise ConfigError(f"--pretrained-backbone: {value} is neither 'imagenet' nor an existing file")
    return value


def _check_preset(name: str) -> None:
    from fsanet_geo.model.presets import list_presets

    if name not in list_presets():
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(list_presets())}")
