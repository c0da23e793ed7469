"""Training chips: exact boxes and pixels, the edge rule, the object share, determinism,
the labelled area, detect's stretch, and DataLoader workers."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from chip_helpers import gradient, label_set, scene_labels, write_scene

from fsanet_geo.data.dataset import collate
from fsanet_geo.errors import Notice
from fsanet_geo.geo.pixels.reader import TileReader
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.pixels.stretch import choose_scaling
from fsanet_geo.geo.windows import TileWindow
from fsanet_geo.geodata.chips import ChipSampler, SceneChipDataset
from fsanet_geo.geodata.spatial_split import chip_window, spatial_split
from fsanet_geo.geodata.types import SceneLabels, SceneSplit
from fsanet_geo.train.sampler import SeededItems, item_seed, keyed_batches, seeded_rngs

OBJECT = (40.0, 40.0, 50.0, 46.0)


def whole(scene: SceneLabels) -> list[SceneSplit]:
    return [SceneSplit(0, shapely.box(0, 0, scene.info.width, scene.info.height))]


@pytest.fixture
def one_object(tmp_path: Path) -> SceneLabels:
    return scene_labels(write_scene(tmp_path / "a.tif", gradient(100, 120)), [OBJECT])


def test_hand_placed_object_gives_exact_box_and_pixels(one_object: SceneLabels) -> None:
    ds = SceneChipDataset(label_set(one_object), whole(one_object), chip_size=32, object_share=1.0, flip_h=0,
                          chips_per_epoch=20)
    data = gradient(100, 120)
    image8, boxes, labels = ds.chip(0, chip_window(45, 43, 32, 120, 100))  # window (29, 27, 32, 32)
    assert boxes.tolist() == [[11.0, 13.0, 21.0, 19.0]] and labels.tolist() == [0]
    assert np.array_equal(image8, data[:, 27:59, 29:61])
    for i in range(20):  # object-centred items: the object whole, its pixels under its box
        image, target = ds[i]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert target["labels"].tolist() == [0] and target["orig_size"] == (32, 32) and target["scale"] == 1.0
        x1, y1, x2, y2 = (int(v) for v in target["boxes"][0])
        assert (x2 - x1, y2 - y1) == (10, 6)
        assert np.array_equal(image[:, y1:y2, x1:x2].numpy(), data[:, 40:46, 40:50].astype(np.float32))


def test_box_cut_by_the_chip_edge_follows_the_crop_rule(one_object: SceneLabels) -> None:
    ds = SceneChipDataset(label_set(one_object), whole(one_object), chip_size=32)
    _, kept, _ = ds.chip(0, (45, 30, 32, 32))  # 5 of 10 columns inside: half the area, kept
    assert kept.tolist() == [[0.0, 10.0, 5.0, 16.0]]
    _, dropped, labels = ds.chip(0, (46, 30, 32, 32))  # 4 of 10: under MIN_VISIBLE, dropped
    assert dropped.shape == (0, 4) and labels.shape == (0,)
    image8, kept, _ = ds.chip(0, (-10, -6, 32, 32))  # hanging off the raster: read as zeros
    assert kept.shape == (0, 4)
    assert not image8[:, :6].any() and not image8[:, :, :10].any()
    assert np.array_equal(image8[:, 6:, 10:], gradient(100, 120)[:, :26, :22])
    image8, _, _ = ds.chip(0, (100, 80, 32, 32))  # off the far corner
    assert np.array_equal(image8[:, :20, :20], gradient(100, 120)[:, 80:, 100:]) and not image8[:, 20:].any()


def test_object_share_and_jitter(one_object: SceneLabels) -> None:
    big = dataclasses.replace(one_object, info=dataclasses.replace(one_object.info, width=2000, height=2000))
    labels = label_set(big)
    ds = SceneChipDataset(labels, whole(big), chip_size=32, object_share=0.3)
    rng = np.random.default_rng(0)
    windows = [ds.sampler.draw(rng)[1] for _ in range(2000)]
    holding = [w for w in windows if w[0] <= 40 and w[1] <= 40 and w[0] + 32 >= 50 and w[1] + 32 >= 46]
    assert 0.26 < len(holding) / len(windows) < 0.34  # 0.3, binomial sd 0.01; uniform chips ~0.0002
    assert len({(w[0], w[1]) for w in holding}) > 50  # not always in the middle


def test_items_are_a_pure_function_of_the_item_seed(one_object: SceneLabels) -> None:
    ds = SceneChipDataset(label_set(one_object), whole(one_object), chip_size=24, rot90=True, flip_v=0.5)

    def item(index: int) -> tuple[torch.Tensor, dict]:
        with seeded_rngs(item_seed(7, 2, index)):
            return ds[index]

    for index in range(6):
        a, b = item(index), item(index)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1]["boxes"], b[1]["boxes"])
    images = {item(i)[0].numpy().tobytes() for i in range(6)}
    assert len(images) > 1


def test_outside_the_labelled_area_is_zero_and_unlabelled(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "a.tif", gradient(100, 100))
    scene = scene_labels(path, [(40, 10, 46, 16), (60, 10, 66, 16), (47, 20, 55, 26)],
                         labelled_area=shapely.box(0, 0, 50, 100))
    labels = label_set(scene)
    split = spatial_split(labels, val_fraction=0.0, block_size=50, chip_size=40)
    ds = SceneChipDataset(labels, split, chip_size=40, flip_h=0, chips_per_epoch=30)
    image8, boxes, _ = ds.chip(0, (30, 0, 40, 40))
    assert np.array_equal(image8[:, :, :20], gradient(100, 100)[:, 0:40, 30:50])
    assert not image8[:, :, 20:].any()
    # (60..66) has its centre outside: never a target; (47..55) centre 51 outside too
    assert boxes.tolist() == [[10.0, 10.0, 16.0, 16.0]]
    assert ds.describe()["objects_available"] == 1
    for i in range(30):
        _, target = ds[i]
        assert target["boxes"].shape[0] <= 1


def test_uint16_scene_gets_detects_stretch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(100, 4000, (3, 80, 90)).astype(np.uint16)
    data[:, :10, :10] = 0
    path = write_scene(tmp_path / "u16.tif", data, nodata=0)
    scene = scene_labels(path, [OBJECT])
    ds = SceneChipDataset(label_set(scene), whole(scene), chip_size=48)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Notice)
        detect_scaling = choose_scaling(scene.info, DetectSettings(), None).scaling
    with TileReader(scene.info, detect_scaling, 48) as reader:
        for window in [(0, 0, 48, 48), (30, 20, 48, 48), (42, 32, 48, 48)]:
            tile = reader.read(0, TileWindow(window[1], window[0], window[3], window[2]))
            assert np.array_equal(ds.pixels.read(0, window), tile.image)
    assert not ds.pixels.read(0, (0, 0, 48, 48))[:, :10, :10].any()
    assert ds.pixels.stretches[0] is not None


def test_dataloader_with_two_workers_matches_in_process(one_object: SceneLabels) -> None:
    ds = SceneChipDataset(label_set(one_object), whole(one_object), chip_size=32, chips_per_epoch=8)
    ds[0]  # handles opened in the parent before the fork must not be reused by the workers
    seeded = SeededItems(ds, seed=3)
    batches = keyed_batches([[0, 1, 2, 3], [4, 5, 6, 7]], epoch=1)
    loader = torch.utils.data.DataLoader(seeded, batch_sampler=batches, num_workers=2, collate_fn=collate)
    got = [image for images, _ in loader for image in images]
    expected = [seeded[(1, i)][0] for i in range(8)]
    assert len(got) == 8 and all(torch.equal(a, b) for a, b in zip(got, expected))


def test_default_chips_per_epoch_and_errors(one_object: SceneLabels) -> None:
    ds = SceneChipDataset(label_set(one_object), whole(one_object), chip_size=32)
    assert ds.describe() == {"chips_per_epoch": 12, "train_area_px": 12000.0, "objects_available": 1,
                             "chip_size": 32, "object_share": 0.5, "scenes": 1}  # ceil(12000 / 1024)
    assert len(list(ds.level_images(3))) == 3
    with pytest.raises(IndexError):
        ds[12]
    with pytest.raises(Exception, match="object share must be in"):
        SceneChipDataset(label_set(one_object), whole(one_object), chip_size=32, object_share=1.5)
    with pytest.raises(Exception, match="no scene has a training area"):
        SceneChipDataset(label_set(one_object), [SceneSplit(0, None, [(0, 0, 10, 10)])], chip_size=32)
    sliver = SceneSplit(0, shapely.box(10.6, 0, 11.4, 100))  # no pixel centre (x + 0.5) inside
    with pytest.raises(Exception, match="the training area holds no whole pixel"):
        SceneChipDataset(label_set(one_object), [sliver], chip_size=32)
    sampler = ds.sampler
    assert isinstance(sampler, ChipSampler) and sampler.objects.tolist() == [[0, 0]]
