"""Finding AI-TOD on disk in every known layout, and checking its categories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fsanet_geo.data.aitod import find_aitod_split, normalise_class_name, validate_aitod_categories
from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.dataset import build_dataset
from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod
from fsanet_geo.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("aitod")
    return {
        "toolkit-v2": generate_synthetic_aitod(base / "t2", 5, seed=0, size=64, layout="toolkit", version="v2"),
        "toolkit-v1": generate_synthetic_aitod(base / "t1", 3, seed=0, size=64, layout="toolkit", version="v1"),
        "fsanet-v1": generate_synthetic_aitod(base / "f1", 3, seed=0, size=64, layout="fsanet", version="v1"),
    }


@pytest.mark.parametrize("split, ann_name", [
    ("trainval", "small_trainval_v2_2.0.json"), ("test", "small_test_v2_2.0.json"),
    ("train", "small_train_v2_1.0.json"), ("val", "small_val_v2_1.0.json"),
])
def test_toolkit_v2(trees: dict[str, Path], split: str, ann_name: str) -> None:
    root = trees["toolkit-v2"]
    expected = (root / "aitod" / "annotations" / ann_name, root / "aitod" / "images" / split)
    assert find_aitod_split(root, split) == expected
    assert find_aitod_split(root / "aitod", split) == expected  # the aitod folder itself works too


def test_toolkit_v1_and_fsanet_layouts(trees: dict[str, Path]) -> None:
    t1, f1 = trees["toolkit-v1"], trees["fsanet-v1"]
    assert find_aitod_split(t1, "trainval") == (t1 / "aitod/annotations/small_trainval_v1_1.0.json",
                                                t1 / "aitod/images/trainval")
    assert find_aitod_split(t1, "test", "v1") == (t1 / "aitod/annotations/small_test_v1_1.0.json",
                                                  t1 / "aitod/images/test")
    assert find_aitod_split(f1, "trainval") == (f1 / "trainval/aitod_trainval_v1.json", f1 / "trainval/Images")
    assert find_aitod_split(f1, "test") == (f1 / "test/aitod_test_v1.json", f1 / "test/Images")


def test_v2_preferred_unless_asked(trees: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "both"
    shutil.copytree(trees["toolkit-v2"], root)
    shutil.copy(trees["toolkit-v1"] / "aitod/annotations/small_test_v1_1.0.json", root / "aitod/annotations")
    assert find_aitod_split(root, "test")[0].name == "small_test_v2_2.0.json"
    assert find_aitod_split(root, "test", "v1")[0].name == "small_test_v1_1.0.json"


def test_missing_split_lists_what_was_looked_for(trees: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        find_aitod_split(tmp_path, "trainval")
    text = str(err.value)
    for name in ("aitod/annotations/small_trainval_v2_2.0.json", "aitod/annotations/small_trainval_v1_1.0.json",
                 "trainval/aitod_trainval_v1.json"):
        assert name in text
    with pytest.raises(DatasetError, match="train"):
        find_aitod_split(trees["toolkit-v1"], "train")
    with pytest.raises(DatasetError, match="unknown AI-TOD split 'training'"):
        find_aitod_split(trees["toolkit-v1"], "training")
    with pytest.raises(DatasetError, match="not a folder"):
        find_aitod_split(tmp_path / "missing", "test")
    root = tmp_path / "no-images"
    shutil.copytree(trees["fsanet-v1"], root)
    shutil.rmtree(root / "test" / "Images")
    with pytest.raises(DatasetError, match="found, but its images folder"):
        find_aitod_split(root, "test")


@pytest.mark.parametrize("key", ["toolkit-v2", "toolkit-v1", "fsanet-v1"])
def test_build_dataset_on_each_layout(trees: dict[str, Path], key: str) -> None:
    train = build_dataset("aitod", data_root=trees[key], split="trainval", train=True, input_size=64)
    test = build_dataset("aitod", data_root=trees[key], split="test", train=False, input_size=64)
    assert train.class_names == list(AITOD_CLASSES) and train.cat_ids == list(range(1, 9))
    assert len(test) == len(test.coco["images"])
    assert len(train) == len(train.coco["images"]) - train.stats.skipped_images
    image, target = train[0]
    assert image.shape == (3, 64, 64) and len(target["boxes"]) > 0


def test_an_annotation_file_without_images_is_named(trees: dict[str, Path]) -> None:
    ann, images = find_aitod_split(trees["fsanet-v1"], "test")
    with pytest.raises(ConfigError, match="an annotation file was given without its images folder"):
        build_dataset("aitod", ann=ann, train=False)
    with pytest.raises(ConfigError, match="an images folder was given without its annotation file"):
        build_dataset("aitod", images=images, train=False)


def test_categories_must_be_aitod(tmp_path: Path, trees: dict[str, Path]) -> None:
    ann, images = find_aitod_split(trees["fsanet-v1"], "test")
    data = json.loads(ann.read_text())
    data["categories"][3]["name"] = "boat"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"4: 'boat' \(expected 'ship'\).*--dataset coco"):
        build_dataset("aitod", ann=bad, images=images, train=False)
    # the same file is a valid generic COCO set
    ds = build_dataset("coco", ann=bad, images=images, train=False)
    assert ds.class_names[3] == "boat"
    validate_aitod_categories([{"id": i + 1, "name": n.upper().replace("-", "_")}
                               for i, n in enumerate(AITOD_CLASSES)], "x.json")
    with pytest.raises(DatasetError, match="extra category ids \\[9\\]"):
        validate_aitod_categories([{"id": i + 1, "name": n} for i, n in enumerate(AITOD_CLASSES)]
                                  + [{"id": 9, "name": "tree"}], "x.json")


def test_normalise_class_name() -> None:
    assert normalise_class_name(" Storage_Tank ") == "storage-tank"
    assert normalise_class_name("swimming pool") == "swimming-pool"
