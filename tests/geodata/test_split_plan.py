"""Scene-training defaults fitted to the labelled area: small scenes train, big ones keep the margin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from chip_helpers import gradient, label_set, scene_labels, write_scene
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.chips import SceneChipDataset
from fsanet_geo.geodata.split_plan import plan_split
from fsanet_geo.geodata.types import SceneLabels


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> SceneLabels:
    return scene_labels(write_scene(tmp_path_factory.mktemp("plan") / "s.tif", gradient(16, 16)), np.zeros((0, 4)))


def sized(scene: SceneLabels, height: int, width: int, boxes: np.ndarray | None = None) -> SceneLabels:
    boxes = np.zeros((0, 4)) if boxes is None else boxes
    info = dataclasses.replace(scene.info, height=height, width=width)
    return SceneLabels(scene.source, info, boxes, np.zeros(len(boxes), np.int64))


def plan(scene: SceneLabels, chip: int = 800, fixed: bool = False, block: int | None = None, fraction: float = 0.2):
    return plan_split(label_set(scene), chip_size=chip, chip_fixed=fixed, val_fraction=fraction, val_block=block,
                      seed=0, val_aoi=None)


def test_a_400_px_scene_gets_a_chip_and_blocks_it_can_hold(base: SceneLabels) -> None:
    p = plan(sized(base, 400, 400))
    assert p.chip_size == 192  # half the short side, rounded down to 32 px
    assert p.block_size == 134  # a third of the short side: 9 blocks
    assert len(p.splits[0].val_windows) == 2  # round(0.2 * 9)
    assert not p.margin and p.fitted == ("chip", "block", "margin")
    assert p.train_share == pytest.approx(1 - 2 * 134 * 134 / 400**2, abs=0.02)
    assert "chips of 192 px, validation blocks of 134 px (blanked" in p.describe()


def test_a_1200_by_1000_px_scene_trains_too(base: SceneLabels) -> None:
    p = plan(sized(base, 1000, 1200))
    assert p.chip_size == 480 and p.block_size == 334
    assert 1 <= len(p.splits[0].val_windows) <= 3 and p.splits[0].train_area is not None


def test_a_large_scene_keeps_the_defaults_and_the_margin(base: SceneLabels) -> None:
    p = plan(sized(base, 8000, 8000))
    assert (p.chip_size, p.block_size, p.margin, p.fitted) == (800, 1600, True, ())
    assert p.describe() == "chips of 800 px, validation blocks of 1600 px"


def test_user_sizes_are_kept(base: SceneLabels) -> None:
    p = plan(sized(base, 400, 400), chip=256, fixed=True, block=100)
    assert p.chip_size == 256 and p.block_size == 100 and p.fitted == ("margin",)


def test_a_refusal_names_a_block_that_works_and_following_it_works(base: SceneLabels) -> None:
    scene = sized(base, 400, 400)
    with pytest.raises(ConfigError) as refused:
        plan(scene, block=1600)
    message = str(refused.value)
    assert message.startswith("--val-fraction 0.2 of 1 block(s) of 1600 px leaves none for training: use "
                              "--val-block 134 or --val-fraction 0")
    advised = int(message.split("--val-block ")[1].split()[0])
    assert plan(scene, block=advised).splits[0].train_area is not None
    assert plan(scene, block=1600, fraction=0.0).splits[0].val_windows == []


def test_without_margin_chips_blank_the_validation_pixels_and_drop_their_boxes(tmp_path) -> None:
    image = np.full((1, 90, 90), 200, np.uint8)
    boxes = np.array([[5, 5, 15, 15], [70, 70, 80, 80]], np.float64)  # one in the block, one outside
    scene = scene_labels(write_scene(tmp_path / "s.tif", image), boxes)
    splits = [dataclasses.replace(s, margin=False) for s in
              plan_split(label_set(scene), chip_size=90, chip_fixed=True, val_fraction=0.0, val_block=None,
                         seed=0, val_aoi=None).splits]
    splits[0] = dataclasses.replace(splits[0], val_windows=[(0, 0, 30, 30)],
                                    train_area=shapely.box(0, 0, 90, 90).difference(shapely.box(0, 0, 30, 30)))
    chips = SceneChipDataset(label_set(scene), splits, chip_size=90, flip_h=0.0)
    pixels, kept, _ = chips.chip(0, (0, 0, 90, 90))
    assert int(pixels[:, :30, :30].max()) == 0 and int(pixels[:, 30:, 30:].min()) == 200
    assert kept.tolist() == [[70.0, 70.0, 80.0, 80.0]]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.integers(60, 3000), width=st.integers(60, 3000), chip=st.sampled_from([256, 512, 800]),
       fraction=st.sampled_from([0.1, 0.2, 0.3]))
def test_any_scene_from_60_px_trains_on_defaults(base: SceneLabels, height: int, width: int, chip: int,
                                                 fraction: float) -> None:
    p = plan(sized(base, height, width), chip=chip, fraction=fraction)
    split = p.splits[0]
    assert split.train_area is not None and split.train_area.area > 0
    assert split.val_windows and p.chip_size <= chip
    for c, r, w, h in split.val_windows:  # no chip centre lies in a validation block
        assert not split.train_area.intersects(shapely.box(c + 0.5, r + 0.5, c + w - 0.5, r + h - 0.5).buffer(-0.1))
