"""export_chips: a COCO set DetectionDataset reads back with the same boxes; the CLI command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from chip_helpers import TRANSFORM, gradient, label_set, random_boxes, scene_labels, write_scene
from fsanet_geo.data.dataset import DetectionDataset
from fsanet_geo.errors import FileOverwriteError
from fsanet_geo.geodata.chips import SceneChipDataset
from fsanet_geo.geodata.export_chips import export_chips
from fsanet_geo.geodata.spatial_split import spatial_split


@pytest.mark.parametrize("image_format", ["png", "tif"])
def test_export_reads_back_with_the_same_boxes(tmp_path: Path, image_format: str) -> None:
    path = write_scene(tmp_path / "a.tif", gradient(120, 160))
    labels = label_set(scene_labels(path, random_boxes(120, 160, 40, seed=2), np.arange(40) % 2),
                       class_names=("car", "boat"))
    splits = spatial_split(labels, val_fraction=0.2, block_size=40, chip_size=32, seed=1)
    done = export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format)
    assert (done.train_images, done.val_images) == (6, 2)
    train = DetectionDataset(tmp_path / "out/train/annotations.json", tmp_path / "out/train/images", train=False)
    assert train.class_names == ["car", "boat"] and train.cat_ids == [1, 2]
    chips = SceneChipDataset(labels, splits, chip_size=32)
    for index, image_entry in enumerate(train.coco["images"]):
        window = tuple(image_entry["fsanet_window"])
        image8, boxes, labs = chips.chip(0, window)
        image, target = train[index]
        assert torch.equal(image, torch.from_numpy(image8).float())
        assert torch.equal(target["boxes"], boxes) and torch.equal(target["labels"], labs)
    val = DetectionDataset(tmp_path / "out/val/annotations.json", tmp_path / "out/val/images", train=False)
    assert len(val) == 2 and [tuple(i["fsanet_window"]) for i in val.coco["images"]] == splits[0].val_windows
    if image_format == "tif":
        with rasterio.open(tmp_path / "out/train/images/chip_000001.tif") as src:
            col, row = train.coco["images"][0]["fsanet_window"][:2]
            assert src.transform == TRANSFORM @ TRANSFORM.translation(col, row)
    record = json.loads((tmp_path / "out/export.json").read_text())
    assert record["chips"] == 6 and record["scenes"][0]["stretch"] is None
    # the same seed writes the same chips; a non-empty folder needs overwrite
    with pytest.raises(FileOverwriteError, match="use --overwrite"):
        export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format)
    export_chips(labels, splits, tmp_path / "out", chip_size=32, chips=6, seed=4, image_format=image_format,
                 overwrite=True)
    again = DetectionDataset(tmp_path / "out/train/annotations.json", tmp_path / "out/train/images", train=False)
    assert again.coco["images"] == train.coco["images"]
