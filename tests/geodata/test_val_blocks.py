"""Validation blocks: targets per window, the COCO ground truth, and evaluate_model on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from chip_helpers import gradient, label_set, scene_labels, write_scene

from fsanet_geo.evaluate.predict import evaluate_model
from fsanet_geo.geodata.types import SceneSplit
from fsanet_geo.geodata.val_blocks import ValBlockDataset
from fsanet_geo.model.presets import build_model


def test_blocks_targets_and_coco(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "a.tif", gradient(100, 140))
    boxes = [(10, 10, 20, 16), (60, 5, 80, 15), (95, 60, 105, 70), (120, 90, 130, 99)]
    labels = label_set(scene_labels(path, boxes, [0, 1, 1, 0]), class_names=("car", "boat"))
    split = SceneSplit(0, None, [(0, 0, 70, 50), (70, 50, 70, 50)])
    ds = ValBlockDataset(labels, [split])
    assert len(ds) == 2 and ds.cat_ids == [1, 2] and ds.class_names == ["car", "boat"]
    image, target = ds[0]
    assert image.shape == (3, 50, 70) and torch.equal(image, torch.from_numpy(gradient(100, 140)[:, :50, :70]).float())
    # centre (70, 10) of the second box lies in the next column of blocks: not here
    assert target["boxes"].tolist() == [[10.0, 10.0, 20.0, 16.0]] and target["labels"].tolist() == [0]
    _, target = ds[1]
    # (95..105, 60..70) centre (100, 65) inside; (120..130, 90..99) centre (125, 94.5) inside
    assert target["boxes"].tolist() == [[25.0, 10.0, 35.0, 20.0], [50.0, 40.0, 60.0, 49.0]]
    assert target["image_id"] == 2 and target["orig_size"] == (50, 70) and ds.blocks[2] == (0, (70, 50, 70, 50))
    assert [im["file_name"] for im in ds.coco["images"]] == ["a.tif#0_0", "a.tif#70_50"]
    assert [a["bbox"] for a in ds.coco["annotations"]] == [[10.0, 10.0, 10.0, 6.0], [25.0, 10.0, 10.0, 10.0],
                                                           [50.0, 40.0, 10.0, 9.0]]
    assert [c["name"] for c in ds.coco["categories"]] == ["car", "boat"]
    scene_index, scene_boxes = ds.to_scene(2, target["boxes"].numpy())
    assert scene_index == 0 and scene_boxes.tolist() == [[95.0, 60.0, 105.0, 70.0], [120.0, 90.0, 130.0, 99.0]]


def test_evaluate_model_on_two_blocks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = write_scene(tmp_path / "a.tif", gradient(96, 192))
    boxes = np.array([(10, 10, 20, 16), (150, 40, 160, 50)], np.float64)
    labels = label_set(scene_labels(path, boxes))
    ds = ValBlockDataset(labels, [SceneSplit(0, None, [(0, 0, 96, 96), (96, 0, 96, 96)])])
    model = build_model("fsanet_r18_tiny", num_classes=1, class_names=["vehicle"], input_size=64)
    result = evaluate_model(model, ds, batch_size=2)  # blocks of 96 px > the 64 px tile: detect's tiling
    assert result.counts["images"] == 2 and result.counts["ground_truth"] == 2
    assert set(result.per_class) == {"vehicle"}


def test_blocks_zero_outside_the_labelled_area_and_share_the_chips_reader(tmp_path: Path) -> None:
    import shapely

    from fsanet_geo.geodata.chips import SceneChipDataset

    path = write_scene(tmp_path / "a.tif", gradient(60, 60))
    scene = scene_labels(path, [(5, 5, 11, 11), (40, 5, 46, 11)], labelled_area=shapely.box(0, 0, 30, 60))
    labels = label_set(scene)
    split = SceneSplit(0, shapely.box(0, 30, 30, 60), [(0, 0, 60, 30)])
    chips = SceneChipDataset(labels, [split], chip_size=16)
    ds = ValBlockDataset(labels, [split], pixels=chips.pixels)
    image, target = ds[0]
    assert torch.equal(image[:, :, :30], torch.from_numpy(gradient(60, 60)[:, :30, :30]).float())
    assert not image[:, :, 30:].any()
    assert target["boxes"].tolist() == [[5.0, 5.0, 11.0, 11.0]]  # (40..46) lies outside the labelled area
    assert len(ds.coco["annotations"]) == 1 and ds.pixels is chips.pixels
