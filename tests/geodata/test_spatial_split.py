"""Spatial split: whole blocks held out, and no training chip ever meets a validation block."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import shapely
from chip_helpers import gradient, label_set, random_boxes, scene_labels, write_scene
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.chips import ChipSampler
from fsanet_geo.geodata.scene_pixels import ScenePixels
from fsanet_geo.geodata.spatial_split import chip_window, forbidden_box, spatial_split
from fsanet_geo.geodata.types import SceneLabels


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> SceneLabels:
    path = write_scene(tmp_path_factory.mktemp("split") / "s.tif", gradient(16, 16))
    return scene_labels(path, np.zeros((0, 4)))


def resized(scene: SceneLabels, height: int, width: int, boxes: np.ndarray, area: object = None,
            split: str | None = None) -> SceneLabels:
    """``scene`` claiming another size (sampling never reads pixels of a uint8 scene)."""
    info = dataclasses.replace(scene.info, height=height, width=width)
    source = dataclasses.replace(scene.source, split=split)
    return SceneLabels(source, info, boxes, np.zeros(len(boxes), np.int64), labelled_area=area)


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    height=st.integers(20, 120), width=st.integers(20, 120), block=st.integers(8, 50), chip=st.integers(4, 60),
    fraction=st.sampled_from([0.1, 0.25, 0.4]), seed=st.integers(0, 10_000), with_area=st.booleans(),
)
def test_no_training_chip_meets_a_validation_block(
    tiny_scene: SceneLabels, height: int, width: int, block: int, chip: int, fraction: float, seed: int,
    with_area: bool,
) -> None:
    area = shapely.Polygon([(3.3, 2.0), (width - 1.5, 5.2), (width * 0.7, height - 0.4), (1.0, height * 0.6)]) \
        if with_area else None
    boxes = random_boxes(height, width, 30, seed=seed, max_size=6)
    labels = label_set(resized(tiny_scene, height, width, boxes, area))
    try:
        split = spatial_split(labels, val_fraction=fraction, block_size=block, seed=seed, chip_size=chip)[0]
    except ConfigError as exc:  # too few blocks, or the chip margin eats the training area
        assert "validation" in str(exc) or "training" in str(exc)
        return
    assert split.val_windows
    if split.train_area is None:
        return
    # Every pixel whose centre lies in the training area (exhaustively) ...
    rows, cols = np.mgrid[0:height, 0:width]
    inside = shapely.contains_xy(split.train_area, cols + 0.5, rows + 0.5)
    c0, r0, cw, ch = chip_window(cols[inside], rows[inside], chip, width, height)
    for v in split.val_windows:
        meets = (c0 < v[0] + v[2]) & (v[0] < c0 + cw) & (r0 < v[1] + v[3]) & (v[1] < r0 + ch)
        assert not np.any(meets), v
    # ... and many chips the sampler draws, object-centred and uniform (when a pixel is left).
    if not inside.any():
        return
    pixels = ScenePixels(labels)
    sampler = ChipSampler(labels, [split], pixels, chip_size=chip, object_share=0.5)
    rng = np.random.default_rng(seed)
    for _ in range(100):
        _, window = sampler.draw(rng)
        assert not any(overlaps(window, v) for v in split.val_windows)


def test_forbidden_box_is_exact_along_an_axis() -> None:
    # chip 4 (half 2) against columns [10, 20) of a wide scene: centre pixels 9..21 meet it.
    x1, _, x2, _ = forbidden_box((10, 40, 10, 20), 4, 100, 100)
    meets = [k for k in range(40) if overlaps(chip_window(k, 50, 4, 100, 100), (10, 40, 10, 20))]
    assert meets == list(range(9, 22))
    assert all(x1 < k + 0.5 < x2 for k in meets)
    assert not any(x1 <= k + 0.5 <= x2 for k in range(40) if k not in meets)


def test_chip_window_covers_an_axis_shorter_than_the_chip() -> None:
    assert chip_window(50, 7, 32, 100, 20) == (34, 0, 32, 20)
    assert chip_window(0, 0, 32, 100, 100) == (-16, -16, 32, 32)


def test_blocks_fraction_and_seed(tiny_scene: SceneLabels) -> None:
    labels = label_set(resized(tiny_scene, 100, 100, np.zeros((0, 4))))
    first = spatial_split(labels, val_fraction=0.25, block_size=25, seed=3, chip_size=10)[0]
    again = spatial_split(labels, val_fraction=0.25, block_size=25, seed=3, chip_size=10)[0]
    assert first.val_windows == again.val_windows
    assert len(first.val_windows) == 4  # round(0.25 * 16 blocks)
    assert all(w[2:] == (25, 25) and w[0] % 25 == 0 and w[1] % 25 == 0 for w in first.val_windows)
    # the training area: the raster minus each block grown by the chip's reach (5 before, 4 after + 1)
    expected = shapely.box(0, 0, 100, 100)
    for w in first.val_windows:
        expected = expected.difference(shapely.box(w[0] - 4, w[1] - 4, w[0] + w[2] + 5, w[1] + w[3] + 5))
    assert first.train_area.equals(expected)


def test_scene_splits_and_errors(tiny_scene: SceneLabels) -> None:
    val = resized(tiny_scene, 60, 60, np.zeros((0, 4)), split="val")
    train = resized(tiny_scene, 60, 60, np.zeros((0, 4)), split="train")
    splits = spatial_split(label_set(val, train), val_fraction=0.5, block_size=30, chip_size=8)
    assert splits[0].train_area is None and splits[0].val_windows == [(0, 0, 30, 30), (30, 0, 30, 30),
                                                                       (0, 30, 30, 30), (30, 30, 30, 30)]
    assert splits[1].val_windows == [] and splits[1].train_area.area == 3600
    one_block = label_set(resized(tiny_scene, 30, 30, np.zeros((0, 4))))
    with pytest.raises(ConfigError, match="leaves none for training"):
        spatial_split(one_block, val_fraction=0.2, block_size=30, chip_size=8)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\)"):
        spatial_split(one_block, val_fraction=1.0, block_size=30, chip_size=8)
    with pytest.raises(ConfigError, match="no training area"):
        spatial_split(label_set(val), val_fraction=0.2, block_size=30, chip_size=8)
    assert spatial_split(one_block, val_fraction=0.0, block_size=30, chip_size=8)[0].val_windows == []
    with pytest.raises(ConfigError, match="no validation block: every scene's split is 'train'"):
        spatial_split(label_set(train), val_fraction=0.2, block_size=30, chip_size=8)


def test_labelled_area_limits_blocks(tiny_scene: SceneLabels) -> None:
    area = shapely.box(10.5, 0, 40, 25)
    labels = label_set(resized(tiny_scene, 100, 100, np.zeros((0, 4)), area))
    split = spatial_split(labels, val_fraction=0.5, block_size=25, seed=0, chip_size=4)[0]
    # blocks (0, 0) and (25, 0) hold the area; each is clipped to the area's bounds inside it
    assert split.val_windows in ([(10, 0, 15, 25)], [(25, 0, 15, 25)])
    assert split.train_area.within(area)
    # an area sharing the raster's edge: its intersection with the raster keeps only polygons
    edge = shapely.MultiPolygon([shapely.box(-5, 0, 0, 50), shapely.box(1, 1, 60, 60)])
    split = spatial_split(label_set(resized(tiny_scene, 100, 100, np.zeros((0, 4)), edge)), val_fraction=0.0,
                          block_size=25, chip_size=4)[0]
    assert split.train_area.geom_type == "Polygon" and split.train_area.equals(shapely.box(1, 1, 60, 60))


def test_val_aoi_windows(tmp_path: Path, tiny_scene: SceneLabels) -> None:
    import geopandas
    from chip_helpers import TRANSFORM

    scene = resized(tiny_scene, 100, 100, np.zeros((0, 4)))
    # a polygon covering columns 20.2..40.7, rows 10..30 (map units through the scene transform)
    corners = [TRANSFORM @ (x, y) for x, y in [(20.2, 10), (40.7, 10), (40.7, 30), (20.2, 30)]]
    path = tmp_path / "val.gpkg"
    geopandas.GeoDataFrame(geometry=[shapely.Polygon(corners)], crs="EPSG:32633").to_file(path)
    split = spatial_split(label_set(scene), val_fraction=0.2, block_size=25, chip_size=4, val_aoi=str(path))[0]
    assert split.val_windows == [(20, 10, 21, 20)]
