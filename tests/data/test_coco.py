"""COCO loading: clear errors for bad inputs, repaired boxes counted, dataset items."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fsanet_geo.data.coco import DatasetWarning, LabelledImage, coco_ground_truth, load_coco
from fsanet_geo.data.dataset import DetectionDataset, ResizeWarning, build_dataset, collate, read_image
from fsanet_geo.errors import DatasetError


def write_set(tmp_path: Path, images: list[dict[str, Any]], annotations: list[dict[str, Any]],
              categories: list[dict[str, Any]] | None = None, make_files: bool = True) -> tuple[Path, Path]:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    if make_files:
        for img in images:
            value = np.full((img["height"], img["width"], 3), img["id"] * 10, dtype=np.uint8)
            Image.fromarray(value).save(folder / img["file_name"])
    cats = categories if categories is not None else [{"id": 3, "name": "car"}, {"id": 7, "name": "boat"}]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))
    return ann, folder


def img(i: int, w: int = 40, h: int = 20) -> dict[str, Any]:
    return {"id": i, "file_name": f"im{i}.png", "width": w, "height": h}


def box(i: int, image_id: int, bbox: list[float], cat: int = 3, **extra: Any) -> dict[str, Any]:
    return {"id": i, "image_id": image_id, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3],
            "iscrowd": 0, **extra}


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "top level is a list"),
    ('{"images": [], "annotations": []}', "'categories'"),
    ('{"annotations": [], "categories": []}', "'images'"),
    ("{not json", "not valid JSON"),
])
def test_not_coco_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    ann = tmp_path / "x.json"
    ann.write_text(content)
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match=message) as err:
        load_coco(ann, tmp_path / "images")
    assert str(ann) in str(err.value)


def test_bad_entries_are_named(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1)], [{"id": 5, "image_id": 1, "category_id": 3, "bbox": [1, 2]}])
    with pytest.raises(DatasetError, match="4-number 'bbox'.*'id': 5"):
        load_coco(ann, folder)
    ann, folder = write_set(tmp_path, [{"id": 1, "file_name": "a.png"}], [], make_files=False)
    with pytest.raises(DatasetError, match="'width', 'height'.*a.png"):
        load_coco(ann, folder)


def test_missing_images_are_counted_and_named(tmp_path: Path) -> None:
    images = [img(i) for i in range(1, 6)]
    ann, folder = write_set(tmp_path, images, [])
    for i in (1, 2, 3, 5):
        (folder / f"im{i}.png").unlink()
    with pytest.raises(DatasetError) as err:
        load_coco(ann, folder)
    text = str(err.value)
    assert "4 of 5 image file(s)" in text
    assert "im1.png, im2.png, im3.png (and 1 more)" in text
    with pytest.raises(DatasetError, match="does not exist"):
        load_coco(ann, tmp_path / "nowhere")


def test_unknown_category_and_image_ids_are_named(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1)], [box(1, 1, [1, 1, 5, 5], cat=9), box(2, 1, [1, 1, 5, 5], cat=4),
                                                 box(3, 1, [1, 1, 5, 5], cat=9)])
    with pytest.raises(DatasetError, match=r"unknown category id\(s\) 4, 9 \(categories are \[3, 7\]\)"):
        load_coco(ann, folder)
    ann, folder = write_set(tmp_path, [img(1)], [box(1, 42, [1, 1, 5, 5])])
    with pytest.raises(DatasetError, match=r"unknown image id\(s\) 42"):
        load_coco(ann, folder)


def test_boxes_are_clipped_dropped_and_counted(tmp_path: Path) -> None:
    anns = [
        box(1, 1, [2, 3, 10, 5]),            # kept as is
        box(2, 1, [-3, 15, 10, 10], cat=7),  # clipped to [0, 15, 7, 20], warned (3 px out)
        box(3, 1, [39.5, 0, 1.2, 4]),        # clipped to [39.5, 0, 40, 4]: 0.5 px wide -> tiny
        box(4, 1, [50, 5, 4, 4]),            # entirely outside -> dropped, warned
        box(5, 1, [5, 5, 0.5, 8]),           # under 1 px -> dropped
        box(6, 1, [5, 5, 0, 0]),             # degenerate -> dropped as tiny
        box(7, 1, [1, 1, 6, 6], iscrowd=1),  # crowd -> not a target
        box(8, 1, [1, 1, 6, 6], ignore=1),   # AI-TOD ignore flag -> not a target
        box(9, 1, [20, 0, 20.4, 3]),         # 0.4 px past the edge: clipped silently
    ]
    ann, folder = write_set(tmp_path, [img(1), img(2)], anns)
    with pytest.warns(DatasetWarning) as record:
        coco = load_coco(ann, folder)
    message = str(record[0].message)
    assert "dropped 1 box(es) entirely outside" in message and "annotation 4 of im1.png" in message
    assert "clipped 1 box(es)" in message and "annotation 2 of im1.png" in message
    s = coco.stats
    assert (s.images, s.annotations, s.kept, s.clipped, s.outside, s.tiny, s.crowd, s.empty_images) == \
        (2, 9, 3, 3, 1, 3, 2, 1)
    rec = coco.records[0]
    assert rec.boxes.tolist() == [[2, 3, 12, 8], [0, 15, 7, 20], [20, 0, 40, 3]]
    assert rec.category_ids.tolist() == [3, 7, 3]
    assert coco.coco["annotations"][1]["bbox"] == [-3, 15, 10, 10]  # the raw JSON is untouched


def test_empty_images_skipped_in_training_kept_in_eval(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1), img(2), img(3)], [box(1, 2, [2, 3, 10, 5], cat=7)])
    train = DetectionDataset(ann, folder, train=True)
    evaluation = DetectionDataset(ann, folder, train=False)
    assert len(train) == 1 and train.stats.skipped_images == 2
    assert len(evaluation) == 3 and evaluation.stats.skipped_images == 0
    assert [evaluation[i][1]["image_id"] for i in range(3)] == [1, 2, 3]
    assert evaluation[0][1]["boxes"].shape == (0, 4) and evaluation[0][1]["labels"].dtype == torch.int64
    ann, folder = write_set(tmp_path, [img(1)], [box(1, 1, [2, 3, 10, 5], iscrowd=1)])
    with pytest.raises(DatasetError, match="nothing to train on"):
        DetectionDataset(ann, folder, train=True)


def test_dataset_item_contract(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1, w=40, h=20), img(2, w=20, h=20)],
                            [box(1, 1, [2, 3, 10, 5], cat=7), box(2, 1, [0, 0, 4, 4], cat=3),
                             box(3, 2, [1, 1, 2, 2], cat=3)])
    native = build_dataset("coco", ann=ann, images=folder, train=False, input_size=32)
    image, target = native[0]  # native size by default, whatever the input size
    assert image.shape == (3, 20, 40) and target["scale"] == 1.0
    assert target["boxes"].tolist() == [[2, 3, 12, 8], [0, 0, 4, 4]]
    with pytest.warns(ResizeWarning, match="longer side is 80 px"):
        ds = build_dataset("coco", ann=ann, images=folder, train=False, input_size=80, resize_to=80)
    assert ds.class_names == ["car", "boat"] and ds.cat_ids == [3, 7]
    assert ds.coco["categories"][0]["name"] == "car"
    image, target = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 40, 80)
    assert float(image.min()) == float(image.max()) == 10.0
    assert target["boxes"].dtype == torch.float32
    assert target["boxes"].tolist() == [[4, 6, 24, 16], [0, 0, 8, 8]]
    assert target["labels"].tolist() == [1, 0]
    assert target["image_id"] == 1 and target["orig_size"] == (20, 40) and target["scale"] == 2.0
    images, targets = collate([ds[0], ds[1]])
    assert [tuple(i.shape) for i in images] == [(3, 40, 80), (3, 80, 80)]
    assert [t["image_id"] for t in targets] == [1, 2]


def test_training_transform_flips_boxes_with_the_image(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1, w=40, h=20)], [box(1, 1, [2, 3, 10, 5])])
    ds = build_dataset("coco", ann=ann, images=folder, train=True, input_size=40, flip_h=1.0, flip_v=1.0)
    _, target = ds[0]
    assert target["boxes"].tolist() == [[28, 12, 38, 17]]


def test_image_size_mismatch_is_reported(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1)], [box(1, 1, [2, 3, 10, 5])])
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folder / "im1.png")
    with pytest.raises(DatasetError, match="10 x 10 px but"):
        DetectionDataset(ann, folder, train=False)[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_read_image_bands(tmp_path: Path) -> None:
    import rasterio

    Image.fromarray(np.full((4, 5), 7, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((4, 5, 4), 9, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 5, 3), 11, np.uint8)).save(tmp_path / "c.jpg", quality=100)
    gray = read_image(tmp_path / "g.png")
    assert gray.shape == (3, 4, 5) and float(gray.sum()) == 7 * 60
    assert read_image(tmp_path / "a.png").shape == (3, 4, 5)
    assert read_image(tmp_path / "c.jpg").shape == (3, 4, 5)
    data = np.arange(4 * 4 * 5, dtype=np.uint8).reshape(4, 4, 5)
    profile = {"driver": "GTiff", "width": 5, "height": 4, "count": 4, "dtype": "uint8"}
    with rasterio.open(tmp_path / "m.tif", "w", photometric="MINISBLACK", **profile) as dst:
        dst.write(data)
    multi = read_image(tmp_path / "m.tif")
    assert multi.shape == (4, 4, 5) and torch.equal(multi, torch.from_numpy(data).float())
    with rasterio.open(tmp_path / "rgba.tif", "w", photometric="RGB", alpha="YES", **profile) as dst:
        dst.write(data)
    rgb = read_image(tmp_path / "rgba.tif")
    assert rgb.shape == (3, 4, 5) and torch.equal(rgb, torch.from_numpy(data[:3]).float())
    with rasterio.open(tmp_path / "u16.tif", "w", driver="GTiff", width=5, height=4, count=1, dtype="uint16") as dst:
        dst.write(np.zeros((1, 4, 5), np.uint16))
    with pytest.raises(DatasetError, match="not 8-bit"):
        read_image(tmp_path / "u16.tif")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match="cannot read image"):
        read_image(tmp_path / "bad.png")


def test_clean_set_gives_no_warning(tmp_path: Path) -> None:
    ann, folder = write_set(tmp_path, [img(1)], [box(1, 1, [2, 3, 10, 5])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_coco(ann, folder).stats.kept == 1


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.lists(st.tuples(st.floats(-20, 60), st.floats(-20, 40), st.floats(0, 30), st.floats(0, 30),
                              st.booleans()), max_size=12))
def test_every_annotation_is_accounted_for(tmp_path: Path, raw: list) -> None:
    anns = [box(i + 1, 1, [x, y, w, h], iscrowd=int(c)) for i, (x, y, w, h, c) in enumerate(raw)]
    ann, folder = write_set(tmp_path, [img(1, w=40, h=20)], anns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        coco = load_coco(ann, folder)
    s = coco.stats
    assert s.kept + s.tiny + s.outside + s.crowd == s.annotations == len(raw)
    b = coco.records[0].boxes
    assert len(b) == s.kept
    if len(b):
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= 40).all() and (b[:, 3] <= 20).all()
        assert ((b[:, 2] - b[:, 0]) >= 1 - 1e-5).all() and ((b[:, 3] - b[:, 1]) >= 1 - 1e-5).all()


def test_coco_ground_truth_of_a_hand_made_box() -> None:
    image = LabelledImage(1, "s.tif", width=9, height=8, boxes=np.array([[2.0, 3.0, 7.0, 5.0]]), labels=np.array([5]))
    coco = coco_ground_truth([image], class_names=["a", "b", "c", "d", "e", "f"], description="test")
    assert coco["annotations"] == [{"id": 1, "image_id": 1, "category_id": 6, "bbox": [2.0, 3.0, 5.0, 2.0],
                                    "area": 10.0, "iscrowd": 0, "ignore": 0}]
    assert coco["images"] == [{"id": 1, "file_name": "s.tif", "width": 9, "height": 8}]
    assert coco["info"] == {"description": "test"}
    assert coco["categories"][5] == {"id": 6, "name": "f", "supercategory": "f"} and len(coco["categories"]) == 6


def test_coco_ground_truth_numbers_annotations_over_all_images_and_loads_back(tmp_path: Path) -> None:
    images = [
        LabelledImage(3, "a.png", width=20, height=10, boxes=np.array([[0, 0, 4, 5], [10, 2, 12, 9]], float),
                      labels=np.array([1, 0])),
        LabelledImage(7, "b.png", width=20, height=10, boxes=np.zeros((0, 4)), labels=np.zeros(0, np.int64)),
        LabelledImage(9, "c.png", width=20, height=10, boxes=np.array([[1.0, 1.0, 3.0, 2.0]]), labels=np.array([1])),
    ]
    coco = coco_ground_truth(images, class_names=["car", "boat"], description="x")
    assert list(coco) == ["info", "images", "annotations", "categories"]
    ids = [(a["id"], a["image_id"], a["category_id"]) for a in coco["annotations"]]
    assert ids == [(1, 3, 2), (2, 3, 1), (3, 9, 2)]
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps(coco), encoding="utf-8")
    folder = tmp_path / "images"
    folder.mkdir()
    for image in images:
        Image.fromarray(np.zeros((image.height, image.width, 3), np.uint8)).save(folder / image.file_name)
    loaded = load_coco(ann, folder)
    np.testing.assert_array_equal(loaded.records[0].boxes, images[0].boxes)
    assert loaded.records[0].category_ids.tolist() == [2, 1]
    assert loaded.stats.empty_images == 1
