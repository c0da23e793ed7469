"""The georeferenced example scene: GeoTIFF layout, ground truth through the affine, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import ConfigError, FileOverwriteError
from fsanet_geo.synth.example_scene import (
    PIXEL_SIZE_M,
    SCENE_CRS,
    SCENE_ORIGIN,
    make_example_scene,
    scene_transform,
    truth_geodataframe,
)
from fsanet_geo.synth.render import render_scene_layers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("scene")
    return make_example_scene(out, size=512, seed=3)


def test_geotiff_is_georeferenced_tiled_compressed_with_overviews(small_scene) -> None:
    with rasterio.open(small_scene.image) as src:
        assert src.crs.to_epsg() == 32633
        assert src.transform == Affine(0.5, 0.0, 639_000.0, 0.0, -0.5, 5_316_500.0)
        assert (src.width, src.height, src.count) == (512, 512, 3)
        assert src.dtypes == ("uint8", "uint8", "uint8")
        assert src.block_shapes == [(512, 512)] * 3
        assert src.compression.value == "JPEG"
        assert [src.overviews(b) for b in (1, 2, 3)] == [[2, 4, 8]] * 3
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        data = src.read()
    from PIL import Image

    with Image.open(small_scene.image) as tiff:  # the TIFF tags themselves
        tags = tiff.tag_v2
        assert (tags[322], tags[323]) == (512, 512)  # TileWidth, TileLength: a tiled TIFF
        assert tags[259] == 7  # Compression: JPEG
        assert tags[262] == 2  # Photometric: RGB, not YCbCr (full colour resolution for tiny objects)
    expected = render_scene_layers(512, 512, seed=3, context_scale="side").image.transpose(2, 0, 1).astype(np.int16)
    assert np.abs(data.astype(np.int16) - expected).mean() < 4.0  # JPEG q90: close to the rendered image


def test_truth_polygons_are_the_pixel_boxes_through_the_transform(small_scene) -> None:
    import geopandas
    import shapely

    rendered = render_scene_layers(512, 512, seed=3, context_scale="side")
    truth = geopandas.read_file(small_scene.truth_gpkg)
    assert truth.crs.to_epsg() == 32633
    assert list(truth.columns) == ["class_id", "class_name", "x_min", "y_min", "x_max", "y_max", "geometry"]
    assert len(truth) == small_scene.num_objects == len(rendered.boxes) > 10
    boxes = truth[["x_min", "y_min", "x_max", "y_max"]].to_numpy()
    np.testing.assert_array_equal(boxes, rendered.boxes)
    np.testing.assert_array_equal(truth["class_id"].to_numpy(), rendered.labels)
    assert truth["class_name"].tolist() == [AITOD_CLASSES[i] for i in rendered.labels]
    # corners by hand: E = 639000 + 0.5 col, N = 5316500 - 0.5 row
    bounds = shapely.bounds(truth.geometry.values)
    expected = np.stack([639_000 + 0.5 * boxes[:, 0], 5_316_500 - 0.5 * boxes[:, 3],
                         639_000 + 0.5 * boxes[:, 2], 5_316_500 - 0.5 * boxes[:, 1]], axis=1)
    np.testing.assert_allclose(bounds, expected, rtol=0, atol=1e-6)
    areas = truth.geometry.area.to_numpy()
    np.testing.assert_allclose(areas, 0.25 * (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), atol=1e-6)
    assert all(len(shapely.get_coordinates(g)) == 5 for g in truth.geometry)
    import pyogrio

    info = pyogrio.read_info(small_scene.truth_gpkg)
    assert info["layer_name"] == "example_scene_truth" and info["geometry_type"] == "Polygon"
    assert info["layer_metadata"] == {"pixel_size": "0.5"}


def test_coco_truth_matches_the_vector_truth(small_scene) -> None:
    coco = json.loads(small_scene.truth_coco.read_text(encoding="utf-8"))
    assert coco["images"] == [{"id": 1, "file_name": "example_scene.tif", "width": 512, "height": 512}]
    assert [c["name"] for c in coco["categories"]] == list(AITOD_CLASSES)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 9))
    rendered = render_scene_layers(512, 512, seed=3, context_scale="side")
    anns = coco["annotations"]
    assert len(anns) == len(rendered.boxes)
    xywh = np.array([a["bbox"] for a in anns])
    np.testing.assert_array_equal(xywh[:, :2], rendered.boxes[:, :2])
    np.testing.assert_array_equal(xywh[:, :2] + xywh[:, 2:], rendered.boxes[:, 2:])
    assert [a["category_id"] for a in anns] == (rendered.labels + 1).tolist()
    assert [a["area"] for a in anns] == (xywh[:, 2] * xywh[:, 3]).tolist()
    assert {a["image_id"] for a in anns} == {1} and len({a["id"] for a in anns}) == len(anns)


def test_quicklook_is_a_small_png(small_scene) -> None:
    from PIL import Image

    assert small_scene.quicklook is not None
    with Image.open(small_scene.quicklook) as im:
        assert im.format == "PNG" and im.size == (512, 512)  # never upscaled


def test_same_seed_same_scene_other_seed_other_scene(tmp_path: Path, small_scene) -> None:
    again = make_example_scene(tmp_path / "a", size=512, seed=3, quicklook=False)
    other = make_example_scene(tmp_path / "b", size=512, seed=4, quicklook=False)
    assert again.image.read_bytes() == small_scene.image.read_bytes()
    assert again.truth_coco.read_bytes() == small_scene.truth_coco.read_bytes()
    assert again.quicklook is None and not (tmp_path / "a" / "example_scene_quicklook.png").exists()
    assert other.image.read_bytes() != small_scene.image.read_bytes()
    assert other.truth_coco.read_bytes() != small_scene.truth_coco.read_bytes()


def test_existing_outputs_are_kept_without_overwrite(tmp_path: Path) -> None:
    first = make_example_scene(tmp_path, size=128, seed=1, quicklook=False)
    before = first.image.read_bytes()
    with pytest.raises(FileOverwriteError, match="example_scene.tif already exists"):
        make_example_scene(tmp_path, size=128, seed=2, quicklook=False)
    assert first.image.read_bytes() == before
    second = make_example_scene(tmp_path, size=128, seed=2, quicklook=False, overwrite=True)
    assert second.image.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "example_scene.tif", "example_scene_truth.gpkg", "example_scene_truth.json"]


@settings(max_examples=40, deadline=None)
@given(
    corners=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000), st.integers(1, 64), st.integers(1, 64)),
                     min_size=0, max_size=20),
    pixel=st.sampled_from([0.3, 0.5, 1.0, 10.0]),
    origin=st.tuples(st.floats(-1e6, 1e6), st.floats(-1e7, 1e7)),
)
def test_truth_bounds_are_the_boxes_in_metres(corners, pixel, origin) -> None:
    import shapely

    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in corners], np.float64).reshape(-1, 4)
    labels = np.arange(len(boxes)) % 8
    transform = scene_transform(origin, pixel)
    gdf = truth_geodataframe(boxes, labels, transform, SCENE_CRS)
    assert len(gdf) == len(boxes)
    if len(boxes):
        expected = np.stack([origin[0] + pixel * boxes[:, 0], origin[1] - pixel * boxes[:, 3],
                             origin[0] + pixel * boxes[:, 2], origin[1] - pixel * boxes[:, 1]], axis=1)
        np.testing.assert_allclose(shapely.bounds(gdf.geometry.values), expected, rtol=0, atol=1e-6)


def test_truth_rejects_labels_without_names() -> None:
    with pytest.raises(ConfigError, match="labels must be in 0..7"):
        truth_geodataframe(np.zeros((1, 4)), np.array([8]), scene_transform(), SCENE_CRS)


def test_scene_constants_place_the_scene_in_austria() -> None:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(SCENE_CRS, "EPSG:4326", always_xy=True).transform(*SCENE_ORIGIN)
    assert 47.9 < lat < 48.1 and 16.7 < lon < 17.0  # Parndorf plateau, Burgenland
    assert PIXEL_SIZE_M == 0.5


def test_script_writes_the_scene(tmp_path: Path) -> None:
    script = ROOT / "examples" / "make_example_scene.py"
    run = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "d"), "--size", "128", "--seed", "2"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "128 x 128 px" in run.stdout
    assert (tmp_path / "d" / "example_scene.tif").is_file()
    again = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "d"), "--size", "128"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.slow
def test_api_example_runs(tmp_path: Path) -> None:
    scene = make_example_scene(tmp_path / "s", size=256, seed=5, quicklook=False)
    run = subprocess.run([sys.executable, str(ROOT / "examples" / "api_example.py"), str(scene.image)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr
    assert "-> api_detections.gpkg" in run.stdout
    import geopandas

    out = geopandas.read_file(tmp_path / "api_detections.gpkg")
    assert out.crs.to_epsg() == 32633
    assert {"class_id", "class_name", "score", "x_min", "y_max"} <= set(out.columns)
