"""The datasets of a run trained on scenes + vector labels (``dataset="scenes"``).

Labels are read and mapped to each scene's pixels (:mod:`fsanet_geo.geodata.labels`), the
labelled area is split into training area and validation blocks
(:mod:`fsanet_geo.geodata.spatial_split`), training chips are read on the fly through
``fsanet detect``'s reader and stretch (:mod:`fsanet_geo.geodata.chips`) and validation
runs on whole blocks, tiled like ``detect`` (:mod:`fsanet_geo.geodata.val_blocks`).
"""

from __future__ import annotations

import statistics
import warnings
from typing import Any

from fsanet_geo.errors import Notice, TrainingError
from fsanet_geo.train.config import TrainConfig

GSD_SPREAD = 0.10
"""Scenes whose GSDs differ from their median by more than this share are reported."""


def build_scene_datasets(config: TrainConfig, chip_size: int, in_channels: int | None = None,
                         levels: Any = None) -> tuple[Any, Any | None]:
    """``(training chips, validation blocks or None)`` of ``config``'s scenes.

    Args:
        config: a ``dataset="scenes"`` config.
        chip_size: the model's input size, pixels; the chips are that size unless the
            labelled area is too small for it (:mod:`fsanet_geo.geodata.split_plan`).
        in_channels: the model's channel count (band choice and checks).
        levels: 8-bit levels non-8-bit scenes are stretched to (a fine-tuned checkpoint's);
            None: their 2-98 % range to 0..255.

    Raises:
        TrainingError: no labelled object is left for training.
    """
    from fsanet_geo.geodata.chips import SceneChipDataset
    from fsanet_geo.geodata.labels import check_scenes_once, load_label_set
    from fsanet_geo.geodata.split_plan import plan_split
    from fsanet_geo.geodata.types import LabelOptions, LabelSource
    from fsanet_geo.geodata.val_blocks import ValBlockDataset

    scenes = config.scenes
    sources = [LabelSource(**source) for source in scenes.sources]
    options = LabelOptions(
        class_field=scenes.class_field, classes=tuple(scenes.classes) if scenes.classes else None,
        point_box=scenes.point_box, bands=tuple(scenes.bands) if scenes.bands else None, in_channels=in_channels,
    )
    check_scenes_once(sources)
    label_set = load_label_set(sources, options, aoi=scenes.aoi)
    if label_set.num_objects == 0:
        where = "their scenes" if scenes.aoi is None else f"their scenes and --aoi {scenes.aoi}"
        check = "" if scenes.aoi is None else " --aoi ..."
        raise TrainingError(f"the labels hold no object inside {where}: nothing to train on "
                            f"(fsanet data check --scene ... --labels ...{check} shows why)")
    val_fraction = scenes.val_fraction if config.val_interval else 0.0
    plan = plan_split(label_set, chip_size=chip_size, chip_fixed=config.input_size is not None,
                      val_fraction=val_fraction, val_block=scenes.val_block, seed=config.seed,
                      val_aoi=scenes.val_aoi if config.val_interval else None)
    splits = plan.splits
    train_set = SceneChipDataset(label_set, splits, chip_size=plan.chip_size, object_share=scenes.object_share,
                                 chips_per_epoch=scenes.chips_per_epoch, flip_h=config.flip_h,
                                 flip_v=config.flip_v, rot90=config.rot90, levels=levels)
    train_set.gsd = scene_gsd(label_set)
    train_set.bands = tuple(scenes.bands) if scenes.bands else None  # recorded for detect
    val_set = None
    if config.validates and any(split.val_windows for split in splits):
        val_set = ValBlockDataset(label_set, splits, levels=levels, pixels=train_set.pixels)
    train_set.plan = plan
    if scenes.chips_per_epoch is None:  # the run follows iterations (schedule.run_length)
        from fsanet_geo.distributed import launched_world_size
        from fsanet_geo.train.schedule import config_run_length

        train_set.chips_per_epoch, _ = config_run_length(config, len(train_set), launched_world_size())
    warnings.warn(data_summary(label_set, train_set, val_set) + f" ({plan.describe()})", Notice, stacklevel=2)
    return train_set, val_set


def data_summary(label_set: Any, train_set: Any, val_set: Any) -> str:
    """One line: labelled objects per class, chips per epoch, validation blocks and their objects."""
    from fsanet_geo.geodata.label_stats import set_size_range_counts

    per_class = set_size_range_counts(label_set).sum(axis=1)  # data check's table, summed over sizes
    classes = ", ".join(f"{name} {int(n)}" for name, n in zip(label_set.class_names, per_class))
    chips = train_set.describe()
    line = (f"{label_set.num_objects} labelled objects ({classes}); {chips['chips_per_epoch']} chips of "
            f"{chips['chip_size']} px per epoch, {chips['object_share']:.0%} centred on objects")
    if val_set is None:
        return line
    held = len(val_set.coco["annotations"])
    blocks = f"{len(val_set)} block" + ("s" if len(val_set) != 1 else "")
    return f"{line}; validation: {blocks} holding {held} objects"


def scene_gsd(label_set: Any) -> float | None:
    """The median ground sample distance of the training scenes, metres (None: unknown);
    a spread over :data:`GSD_SPREAD` is reported once as a :class:`Notice`."""
    from fsanet_geo.geo.pixels.gsd import raster_gsd

    found = [raster_gsd(s.info.crs, s.info.transform, s.info.height, s.info.width) for s in label_set.scenes]
    known = [g for g in found if g is not None]
    if not known:
        return None
    median = statistics.median(known)
    far = [g for g in known if abs(g - median) > GSD_SPREAD * median]
    if far or len(known) < len(found):
        warnings.warn(f"the training scenes have different pixel sizes ({', '.join(f'{g:.3g}' for g in known)} m); "
                      f"the checkpoints record their median {median:.3g} m", Notice, stacklevel=2)
    return median
