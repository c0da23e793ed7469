"""The synthetic AI-TOD-like generator: deterministic, exact boxes, AI-TOD-like content."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.data.synthetic import render_scene, render_scene_layers
from fsanet_geo.data.synthetic_aitod import generate_synthetic_aitod, scene_seed
from fsanet_geo.errors import ConfigError, FileOverwriteError

SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def scenes() -> list:
    return [render_scene_layers(256, 256, seed=s) for s in SEEDS]


def test_same_seed_same_bytes_different_seed_different() -> None:
    a = render_scene(96, 128, seed=11)
    b = render_scene(96, 128, seed=11)
    c = render_scene(96, 128, seed=12)
    assert a[0].tobytes() == b[0].tobytes()
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert a[0].tobytes() != c[0].tobytes()


def test_output_types_and_boxes_inside_the_image(scenes: list) -> None:
    for scene in scenes:
        assert scene.image.dtype == np.uint8 and scene.image.shape == (256, 256, 3)
        assert scene.boxes.dtype == np.float64 and scene.labels.dtype == np.int64
        b = scene.boxes
        assert len(b) == len(scene.labels) > 0
        assert np.array_equal(b, np.round(b))  # pixel edges
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= 256).all() and (b[:, 3] <= 256).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert ((scene.labels >= 0) & (scene.labels < 8)).all()


def test_boxes_are_the_exact_extent_of_the_drawn_pixels(scenes: list) -> None:
    exact = 0
    for scene in scenes:
        for i, (x1, y1, x2, y2) in enumerate(scene.boxes.astype(int)):
            rows, cols = np.nonzero(scene.instance == i)
            assert rows.size > 0  # never fully hidden
            assert cols.min() >= x1 and cols.max() < x2 and rows.min() >= y1 and rows.max() < y2
            covered_later = (scene.instance[y1:y2, x1:x2] > i).any()
            if not covered_later:  # nothing drawn over it: the extent is the box exactly
                assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x1, y1, x2, y2)
                exact += 1
    assert exact > 20


def test_size_distribution_is_skewed_small(scenes: list) -> None:
    boxes = np.concatenate([s.boxes for s in scenes])
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    assert np.median(side) < 16
    assert np.mean(side < 16) > 0.6
    assert side.max() <= 72
    labels = np.concatenate([s.labels for s in scenes])
    person = side[labels == AITOD_CLASSES.index("person")]
    assert person.size > 0 and person.max() <= 7


def test_all_classes_present_over_a_few_images(scenes: list) -> None:
    labels = np.concatenate([s.labels for s in scenes])
    assert set(labels.tolist()) == set(range(8))


def test_objects_respect_their_context(scenes: list) -> None:
    ship = AITOD_CLASSES.index("ship")
    vehicle = AITOD_CLASSES.index("vehicle")
    n_ships, on_road, n_vehicles = 0, 0, 0
    for scene in scenes:
        for i, label in enumerate(scene.labels):
            pixels = scene.instance == i
            if label == ship:
                assert scene.water[pixels].all()
                n_ships += 1
            elif label == vehicle:
                n_vehicles += 1
                on_road += scene.road[pixels].mean() > 0.5
            else:
                assert not scene.water[pixels].all() or label == AITOD_CLASSES.index("bridge")
    assert n_ships > 0
    assert on_road / n_vehicles > 0.5


def test_classes_subset_and_bad_arguments() -> None:
    _, _, labels = render_scene(256, 256, seed=0, classes=("ship", "vehicle"))
    assert len(labels) > 0 and set(labels.tolist()) <= {0, 1}
    with pytest.raises(ConfigError, match="tank"):
        render_scene(64, 64, seed=0, classes=("tank",))
    with pytest.raises(ConfigError):
        render_scene(8, 64, seed=0)
    _, boxes, _ = render_scene(64, 64, seed=0, density=0.0)
    assert boxes.shape == (0, 4)


def test_render_speed_800() -> None:
    render_scene(800, 800, seed=0)  # warm up
    start = time.perf_counter()
    render_scene(800, 800, seed=1)
    assert time.perf_counter() - start < 1.0  # ~0.05 s measured; generous for shared CPUs


def test_generated_set_matches_the_renderer(tmp_path: Path) -> None:
    root = generate_synthetic_aitod(tmp_path / "set", 4, seed=5, size=96, layout="fsanet", version="v1",
                                    test_fraction=0.25)
    trainval = json.loads((root / "trainval" / "aitod_trainval_v1.json").read_text())
    test = json.loads((root / "test" / "aitod_test_v1.json").read_text())
    assert [i["id"] for i in trainval["images"]] == [1, 2, 3] and [i["id"] for i in test["images"]] == [4]
    assert [c["name"] for c in trainval["categories"]] == list(AITOD_CLASSES)
    assert [c["id"] for c in trainval["categories"]] == list(range(1, 9))
    for data, split in ((trainval, "trainval"), (test, "test")):
        ids = [a["id"] for a in data["annotations"]]
        assert len(set(ids)) == len(ids)
        for img in data["images"]:
            image, boxes, labels = render_scene(96, 96, seed=scene_seed(5, img["id"]))
            from PIL import Image

            assert np.array_equal(np.asarray(Image.open(root / split / "Images" / img["file_name"])), image)
            anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
            got = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in anns]).reshape(-1, 4)
            assert np.array_equal(got, boxes)
            assert [a["category_id"] for a in anns] == (labels + 1).tolist()
            assert all(a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0 and a["ignore"] == 0
                       for a in anns)
            assert (img["width"], img["height"]) == (96, 96)


def test_generation_is_deterministic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = generate_synthetic_aitod(tmp_path / "a", 3, seed=1, size=64)
    b = generate_synthetic_aitod(tmp_path / "b", 3, seed=1, size=64)
    c = generate_synthetic_aitod(tmp_path / "c", 3, seed=2, size=64)
    assert files(a) == files(b)
    assert files(a) != files(c)
    assert "aitod/annotations/small_train_v2_1.0.json" in files(a)
    with pytest.raises(FileOverwriteError, match="overwrite"):
        generate_synthetic_aitod(a, 2, seed=9, size=64)
    assert files(a) == files(b)  # untouched
    generate_synthetic_aitod(a, 3, seed=2, size=64, overwrite=True)
    assert files(a) == files(c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temporary leftovers


def test_objects_stay_mostly_visible(scenes: list) -> None:
    for scene in scenes:
        visible = np.bincount(scene.instance[scene.instance >= 0], minlength=len(scene.boxes))
        assert (visible >= 0.5 * scene.pixels).all()
        assert (visible <= scene.pixels).all()
        widths = scene.boxes[:, 2] - scene.boxes[:, 0]
        heights = scene.boxes[:, 3] - scene.boxes[:, 1]
        assert (scene.pixels <= widths * heights).all()



def test_some_objects_touch_or_overlap(scenes: list) -> None:
    touching = 0
    for scene in scenes:
        b = scene.boxes
        x_meet = (b[:, None, 0] <= b[None, :, 2]) & (b[None, :, 0] <= b[:, None, 2])
        y_meet = (b[:, None, 1] <= b[None, :, 3]) & (b[None, :, 1] <= b[:, None, 3])
        meet = x_meet & y_meet
        np.fill_diagonal(meet, False)
        touching += int(meet.sum()) // 2
    assert touching >= 5
