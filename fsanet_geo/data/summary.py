"""What a COCO-format data set holds, as ``fsanet data check`` and ``fsanet data synth`` report it.

:func:`dataset_summary` loads a set with the evaluation rules (every image kept) and returns its
loading counts, boxes per class and box sizes (square root of box area, pixels);
:func:`synthetic_summary` counts the images and objects of a synthetic AI-TOD tree.
Letters: M = boxes.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from fsanet_geo.data.aitod import find_aitod_split
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.coco import read_coco_json
from fsanet_geo.data.dataset import build_dataset
from fsanet_geo.geodata.label_stats import PRESET_REASONS, box_side_stats, preset_for_side


def dataset_summary(kind: str, **where: Any) -> tuple[dict[str, Any], list[str]]:
    """The summary of data set ``kind`` (``where``: :func:`build_dataset`'s ``data_root``, ``split``,
    ``ann``, ``images``) and the loading warnings' messages.

    The summary: ``ann`` (the annotation file), ``stats`` (:class:`DatasetStats` counts),
    ``per_class`` (training boxes per class name), ``object_size`` (``p10_px``, ``median_px``,
    ``p90_px`` of the boxes' square-root areas; None without a box) and the ``preset`` built for
    that size (:func:`~fsanet_geo.geodata.label_stats.preset_for_side`).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset(kind, train=False, **where)
    label_of = {cid: i for i, cid in enumerate(ds.cat_ids)}
    counts = np.zeros(len(ds.cat_ids), np.int64)
    for rec in ds.records:
        np.add.at(counts, [label_of[int(c)] for c in rec.category_ids.tolist()], 1)
    sides = box_side_stats([np.asarray(rec.boxes, np.float64).reshape(-1, 4) for rec in ds.records])
    preset = None if sides is None else preset_for_side(sides.median)
    summary = {"ann": str(ds.ann_path), "stats": ds.stats.to_dict(),
               "per_class": dict(zip(ds.class_names, counts.tolist())),
               "object_size": None if sides is None else sides.to_dict(), "preset": preset,
               "preset_reason": None if preset is None else PRESET_REASONS[preset]}
    return summary, [str(w.message) for w in caught]


def synthetic_summary(root: str | os.PathLike[str], version: str) -> dict[str, Any]:
    """Images per split (``trainval``, ``test``) and objects per AI-TOD class of the tree at ``root``."""
    counts = dict.fromkeys(AITOD_CLASSES, 0)
    splits = {}
    for split in ("trainval", "test"):
        ann, _ = find_aitod_split(root, split, version)
        data = read_coco_json(ann)
        splits[split] = len(data["images"])
        for a in data["annotations"]:
            counts[AITOD_CLASSES[a["category_id"] - 1]] += 1
    return {"images": sum(splits.values()), "splits": splits, "objects": sum(counts.values()), "per_class": counts}
