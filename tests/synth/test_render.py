"""The synthetic scene renderer: deterministic, exact boxes, AI-TOD-like content."""

from __future__ import annotations


import numpy as np
import pytest

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError
from fsanet_geo.synth.render import render_scene, render_scene_layers

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


def test_context_scales_agree_at_training_size() -> None:
    # at 800 px the context scale by side (side / 800) equals the one by area (area / 800^2)
    side = render_scene_layers(800, 800, seed=11, context_scale="side")
    area = render_scene_layers(800, 800, seed=11)
    np.testing.assert_array_equal(side.image, area.image)
    np.testing.assert_array_equal(side.boxes, area.boxes)


def test_context_scale_side_is_deterministic_and_checked() -> None:
    a = render_scene(200, 1000, seed=4, context_scale="side")
    b = render_scene(200, 1000, seed=4, context_scale="side")
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    with pytest.raises(ConfigError, match="context scale"):
        render_scene(64, 64, seed=0, context_scale="volume")  # type: ignore[arg-type]
