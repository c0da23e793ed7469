"""detect_scene end to end with the painted-objects predictor: every object exactly once."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine
from hypothesis import example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from scene_helpers import (
    CLASS_NAMES,
    UTM_TRANSFORM,
    PaintedPredictor,
    PaintedScene,
    paint,
    random_objects,
    sort_boxes,
    write_mosaic_vrt,
    write_painted_scene,
    write_raster,
)

from fsanet_geo.errors import ConfigError, NotGeoreferencedWarning, RasterError, StartingFreshWarning
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.detect.pipeline import detect_scene, detect_scenes
from fsanet_geo.geo.detect.predict import nodata_fraction
from fsanet_geo.geo.detect.run import DetectProgress
from fsanet_geo.geo.settings import DetectSettings, resolve_tiling
from fsanet_geo.geo.pixels.tiling import tile_windows

pytest.importorskip("fsanet_geo.geo.outputs.georef")

TILE, OVERLAP = 64, 16


def assert_found_exactly(gdf, boxes: np.ndarray, labels: np.ndarray, transform: Affine) -> None:  # noqa: ANN001
    """Every ground-truth object once, boxes exact, geometry = affine of the pixel edges."""
    got = gdf[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
    got_boxes, got_labels = sort_boxes(got, gdf["class_id"].to_numpy())
    want_boxes, want_labels = sort_boxes(boxes, labels)
    assert len(got_boxes) == len(want_boxes)
    np.testing.assert_array_equal(got_boxes, want_boxes)
    np.testing.assert_array_equal(got_labels, want_labels)
    assert gdf["class_name"].tolist() == [CLASS_NAMES[i] for i in gdf["class_id"]]
    for row in gdf.itertuples():
        corners = [
            transform @ (row.x_min, row.y_min),
            transform @ (row.x_max, row.y_min),
            transform @ (row.x_max, row.y_max),
            transform @ (row.x_min, row.y_max),
        ]
        ring = np.array(row.geometry.exterior.coords)[:-1]
        for corner in corners:
            assert np.abs(ring - np.array(corner)).sum(axis=1).min() < 1e-6


def cut_by_tile_edges(boxes: np.ndarray, height: int, width: int) -> int:
    """How many objects some tile cuts (they lie partly inside it)."""
    n = 0
    for x0, y0, x1, y1 in boxes:
        for w in tile_windows(height, width, TILE, OVERLAP):
            inside_x = w.col_off <= x0 and x1 <= w.col_end
            inside_y = w.row_off <= y0 and y1 <= w.row_end
            meets = x0 < w.col_end and w.col_off < x1 and y0 < w.row_end and w.row_off < y1
            if meets and not (inside_x and inside_y):
                n += 1
                break
    return n


def test_utm_scene_every_object_once_and_exact(utm_scene: PaintedScene, painted_predictor: PaintedPredictor) -> None:
    events: list[DetectProgress] = []
    gdf = detect_scene(
        utm_scene.path, painted_predictor, tile_size=TILE, overlap=OVERLAP, batch_size=3, progress=events.append
    )
    assert cut_by_tile_edges(utm_scene.boxes, 200, 260) >= 10  # the seams are really exercised
    assert gdf.crs.to_epsg() == 32633
    assert set(gdf.columns) >= {"class_id", "class_name", "score", "x_min", "y_min", "x_max", "y_max", "scene"}
    assert (gdf["scene"] == "utm.tif").all()
    assert np.allclose(gdf["score"], 0.9)
    assert_found_exactly(gdf, utm_scene.boxes, utm_scene.labels, UTM_TRANSFORM)
    n_tiles = len(tile_windows(200, 260, TILE, OVERLAP))
    assert painted_predictor.tiles_seen == n_tiles
    assert painted_predictor.calls == -(-n_tiles // 3)
    assert [e.tiles_done for e in events] == sorted(e.tiles_done for e in events)
    # the first event comes before any tile, with the total known (a progress bar never shows 0/None)
    assert (events[0].tiles_done, events[0].tiles_total, events[0].finished) == (0, n_tiles, False)
    last = events[-1]
    assert last.finished and last.tiles_done == last.tiles_total == n_tiles and last.tiles_skipped == 0
    assert last.detections == len(gdf)
    assert last.class_counts == gdf["class_name"].value_counts().to_dict()


def test_rotated_geotransform_is_applied_exactly(tmp_path: Path) -> None:
    rotated = Affine(0.4, 0.3, 300000.0, 0.3, -0.4, 5_000_000.0)  # rotation + flip, 0.5 m pixels
    scene = write_painted_scene(tmp_path / "rot.tif", height=150, width=140, n_objects=25, seed=2, transform=rotated)
    gdf = detect_scene(scene.path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
    assert_found_exactly(gdf, scene.boxes, scene.labels, rotated)


def test_one_band_scene(tmp_path: Path) -> None:
    scene = write_painted_scene(tmp_path / "one.tif", height=130, width=100, n_objects=15, seed=3, count=1)
    predictor = PaintedPredictor()
    gdf = detect_scene(scene.path, predictor, tile_size=TILE, overlap=OVERLAP)
    assert_found_exactly(gdf, scene.boxes, scene.labels, UTM_TRANSFORM)


def test_scene_smaller_than_a_tile_is_padded(tmp_path: Path) -> None:
    scene = write_painted_scene(tmp_path / "small.tif", height=40, width=50, n_objects=6, seed=4)
    gdf = detect_scene(scene.path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
    assert_found_exactly(gdf, scene.boxes, scene.labels, UTM_TRANSFORM)


def test_uint16_nodata_collar_tiles_skipped_objects_found(tmp_path: Path) -> None:
    height, width, collar = 192, 192, 64
    boxes, labels = random_objects(height - 2 * collar, width - 2 * collar, 8, seed=5)
    boxes += collar
    data = paint(height, width, boxes, labels, count=1).astype(np.uint16) * 10  # 200..2500
    data[:, :collar] = 0
    data[:, -collar:] = 0
    data[:, :, :collar] = 0
    data[:, :, -collar:] = 0
    path = write_raster(tmp_path / "u16.tif", data, nodata=0)
    predictor = PaintedPredictor()
    events: list[DetectProgress] = []
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, scale=(0, 2550))
    gdf = detect_scene(path, predictor, settings=settings, progress=events.append)
    assert_found_exactly(gdf, boxes, labels, UTM_TRANSFORM)
    windows = tile_windows(height, width, TILE, OVERLAP)
    all_nodata = sum(
        1
        for w in windows
        if w.row_end <= collar or w.row_off >= height - collar or w.col_end <= collar or w.col_off >= width - collar
    )
    assert all_nodata > 0
    assert events[-1].tiles_skipped == all_nodata
    assert predictor.tiles_seen == len(windows) - all_nodata


class FixedBoxPredictor:
    """Returns the same box (tile pixels) in every tile."""

    class_names = ["thing"]

    def __init__(self, box: list[float]) -> None:
        self.box = box

    def __call__(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [
            {"boxes": torch.tensor([self.box]), "scores": torch.tensor([0.8]), "labels": torch.tensor([0])}
            for _ in images
        ]


def test_detections_mostly_on_nodata_are_dropped(tmp_path: Path) -> None:
    data = np.full((1, 64, 64), 50, np.uint8)
    data[:, :, :40] = 0  # nodata on columns 0..39
    path = write_raster(tmp_path / "half.tif", data, nodata=0)
    # box columns 30..50: 10 of 20 columns nodata -> 0.5, kept at the default 0.5
    kept = detect_scene(path, FixedBoxPredictor([30, 0, 50, 10]), tile_size=64, overlap=8)
    assert len(kept) == 1
    dropped = detect_scene(path, FixedBoxPredictor([29, 0, 50, 10]), tile_size=64, overlap=8)
    assert len(dropped) == 0
    everything = detect_scene(
        path, FixedBoxPredictor([29, 0, 50, 10]), settings=DetectSettings(tile_size=64, overlap=8, nodata_max_fraction=1.0)
    )
    assert len(everything) == 1


def test_nodata_fraction_hand_case() -> None:
    valid = np.ones((10, 10), bool)
    valid[:, :3] = False
    boxes = np.array([[0, 0, 6, 2], [3, 3, 5, 5], [2.5, 0, 4, 1]], np.float64)
    np.testing.assert_allclose(nodata_fraction(valid, boxes), [0.5, 0.0, 0.5])


def test_vrt_mosaic_of_two_scenes(tmp_path: Path) -> None:
    height, width = 120, 200
    boxes, labels = random_objects(height, width, 30, seed=6)
    # an object straddling the seam between the two files (column 100)
    boxes = np.vstack([boxes[~((boxes[:, 0] < 103) & (boxes[:, 2] > 97))], [[96, 2, 104, 8]]])
    labels = np.append(labels[: len(boxes) - 1], 1)
    image = paint(height, width, boxes, labels)
    left = write_raster(tmp_path / "left.tif", image[:, :, :100])
    right_transform = UTM_TRANSFORM @ Affine.translation(100, 0)
    right = write_raster(tmp_path / "right.tif", np.ascontiguousarray(image[:, :, 100:]), transform=right_transform)
    vrt = write_mosaic_vrt(tmp_path / "mosaic.vrt", [left, right], [(0, 0), (0, 100)], height, width)
    gdf = detect_scene(vrt, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
    assert_found_exactly(gdf, boxes, labels, UTM_TRANSFORM)
    assert (gdf["scene"] == "mosaic.vrt").all()


def test_several_scenes_into_one_layer(tmp_path: Path) -> None:
    a = write_painted_scene(tmp_path / "a.tif", height=100, width=90, n_objects=10, seed=7)
    b = write_painted_scene(tmp_path / "b.tif", height=70, width=120, n_objects=8, seed=8)
    events: list[DetectProgress] = []
    gdf = detect_scenes(
        [a.path, b.path], PaintedPredictor(), settings=DetectSettings(tile_size=TILE, overlap=OVERLAP), progress=events.append
    )
    assert_found_exactly(gdf[gdf["scene"] == "a.tif"], a.boxes, a.labels, UTM_TRANSFORM)
    assert_found_exactly(gdf[gdf["scene"] == "b.tif"], b.boxes, b.labels, UTM_TRANSFORM)
    total = len(tile_windows(100, 90, TILE, OVERLAP)) + len(tile_windows(70, 120, TILE, OVERLAP))
    assert events[-1].tiles_done == events[-1].tiles_total == total
    assert {e.scene_index for e in events} == {0, 1}


def test_scene_without_crs(tmp_path: Path) -> None:
    scene = write_painted_scene(tmp_path / "nocrs.tif", height=80, width=80, n_objects=5, seed=9, crs=None)
    with pytest.raises(RasterError, match="no CRS"):
        detect_scene(scene.path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)
    with pytest.warns(NotGeoreferencedWarning):
        gdf = detect_scene(
            scene.path, PaintedPredictor(), settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, allow_no_crs=True)
        )
    assert gdf.crs is None
    assert_found_exactly(gdf, scene.boxes, scene.labels, Affine.identity())


def test_class_filter_and_score_threshold(utm_scene: PaintedScene) -> None:
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, classes=["ship"])
    gdf = detect_scene(utm_scene.path, PaintedPredictor(), settings=settings)
    ships = utm_scene.labels == 1
    assert_found_exactly(gdf, utm_scene.boxes[ships], utm_scene.labels[ships], UTM_TRANSFORM)
    with pytest.raises(ConfigError, match="unknown class"):
        detect_scene(utm_scene.path, PaintedPredictor(), settings=DetectSettings(classes=["tank"]))
    none = detect_scene(
        utm_scene.path, PaintedPredictor(), settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, score_thr=0.95)
    )
    assert len(none) == 0 and "geometry" in none.columns


class ListSink:
    def __init__(self) -> None:
        self.chunks: list = []

    def write(self, gdf) -> None:  # noqa: ANN001
        self.chunks.append(gdf)


def test_sink_receives_the_same_rows_in_chunks(utm_scene: PaintedScene) -> None:
    sink = ListSink()
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, sink_rows=5)
    returned = detect_scene(utm_scene.path, PaintedPredictor(), settings=settings, sink=sink)
    assert len(returned) == 0
    assert len(sink.chunks) >= 3
    import pandas as pd

    streamed = pd.concat(sink.chunks, ignore_index=True)
    assert_found_exactly(streamed, utm_scene.boxes, utm_scene.labels, UTM_TRANSFORM)


def test_bad_settings_fail_before_reading(utm_scene: PaintedScene) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        detect_scene(utm_scene.path, PaintedPredictor(), settings=DetectSettings(half=True, device="cpu"))
    with pytest.raises(ConfigError, match="smaller than the tile size"):
        detect_scene(utm_scene.path, PaintedPredictor(), tile_size=32, overlap=32)
    with pytest.raises(ConfigError, match="merge metric"):
        detect_scene(utm_scene.path, PaintedPredictor(), settings=DetectSettings(merge_metric="dice"))
    with pytest.raises(RasterError, match="out of range"):
        detect_scene(utm_scene.path, PaintedPredictor(), bands=[5])


def test_tiling_defaults_come_from_the_predictor_config() -> None:
    class Config:
        input_size = 512

    class WithConfig(PaintedPredictor):
        config = Config()

    class TrainedLarge(PaintedPredictor):
        config = type("Large", (), {"input_size": 1024})()

    assert resolve_tiling(DetectSettings(), PaintedPredictor()) == (800, 64)
    # a model trained on 512 px crops still reads 800 px tiles (not tied to the training crop)
    assert resolve_tiling(DetectSettings(), WithConfig()) == (800, 64)
    assert resolve_tiling(DetectSettings(), TrainedLarge()) == (1024, 64)
    assert resolve_tiling(DetectSettings(tile_size=128), WithConfig()) == (128, 32)
    assert resolve_tiling(DetectSettings(tile_size=128, overlap=40), WithConfig()) == (128, 40)


def test_empty_predictions_give_an_empty_frame(utm_scene: PaintedScene) -> None:
    def nothing(images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
        return [empty for _ in images]

    gdf = detect_scene(utm_scene.path, nothing, tile_size=TILE, overlap=OVERLAP)
    assert len(gdf) == 0 and gdf.crs.to_epsg() == 32633


def test_detections_contract_in_scene_pixels(utm_scene: PaintedScene) -> None:
    seen: list[Detections] = []
    detect_scenes(
        [utm_scene.path],
        PaintedPredictor(),
        settings=DetectSettings(tile_size=TILE, overlap=OVERLAP),
        on_detections=lambda i, d: seen.append(d),
    )
    boxes = Detections.concat(seen).boxes
    np.testing.assert_array_equal(sort_boxes(boxes, np.zeros(len(boxes)))[0], sort_boxes(utm_scene.boxes, utm_scene.labels)[0])


def test_warning_free_on_georeferenced_scene(utm_scene: PaintedScene) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detect_scene(utm_scene.path, PaintedPredictor(), tile_size=TILE, overlap=OVERLAP)


def test_the_public_run_steps_give_the_detect_scenes_frame(tmp_path: Path) -> None:
    """SceneRun's public steps, every batch of a scene predicted before any is merged (as
    distributed_detect's rank 0 does), give the frame detect_scenes returns, row for row."""
    from fsanet_geo.geo.detect.predict import batches
    from fsanet_geo.geo.detect.run import SceneRun

    scenes = [write_painted_scene(tmp_path / f"s{i}.tif", height=150, width=170, n_objects=12, seed=i).path
              for i in range(2)]
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=3)
    events: list[DetectProgress] = []
    run = SceneRun.prepare(scenes, PaintedPredictor(), settings, progress=events.append)
    for index, scene in enumerate(run.scenes):
        merger = run.new_merger(index)
        assert run.replay_journal(index, merger) == 0  # no journal
        with run.open_tiles(index, range(len(scene.windows))) as tiles:
            predicted = [(group[0].index, group[-1].index + 1, run.predict(group)) for group in batches(tiles, 3)]
        for first, last, dets in predicted:
            run.take_tiles(index, merger, first, last, 0, dets)
        run.finish_scene(index, merger)
    run.flush()
    expected = detect_scenes(scenes, PaintedPredictor(), settings=settings)
    got = run.result_frame()
    assert got.drop(columns="geometry").equals(expected.drop(columns="geometry"))
    assert got.geometry.to_wkb().tolist() == expected.geometry.to_wkb().tolist()
    assert events[-1].finished and events[-1].tiles_done == run.tiles_total == run.summary().progress.tiles_total


def read_rows(path: Path):  # noqa: ANN201
    import pyogrio

    gdf = pyogrio.read_dataframe(path)
    return gdf.sort_values(["y_min", "x_min"]).reset_index(drop=True)


def test_detect_to_file_streams_into_a_vector_file(utm_scene: PaintedScene, tmp_path: Path) -> None:
    from fsanet_geo.errors import FileOverwriteError
    from fsanet_geo.geo.detect.pipeline import detect_to_file

    out = tmp_path / "out.gpkg"
    summary = detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=DetectSettings(tile_size=TILE, overlap=OVERLAP, sink_rows=7))
    assert summary.output == out and summary.progress.detections == len(utm_scene.boxes)
    gdf = read_rows(out)
    assert gdf.crs.to_epsg() == 32633
    assert_found_exactly(gdf, utm_scene.boxes, utm_scene.labels, UTM_TRANSFORM)
    assert not (tmp_path / "out.gpkg.partial").exists()
    with pytest.raises(FileOverwriteError):
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=DetectSettings(tile_size=TILE, overlap=OVERLAP))


@pytest.mark.parametrize("interrupt_on_call", [2, 14])  # inside the first scene; in the second
def test_resume_after_interrupt_equals_uninterrupted_run(
    utm_scene: PaintedScene, tmp_path: Path, interrupt_on_call: int
) -> None:
    from fsanet_geo.geo.detect.pipeline import detect_to_file

    other = write_painted_scene(tmp_path / "second.tif", height=90, width=130, n_objects=12, seed=11)
    scenes = [utm_scene.path, other.path]
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2)
    reference = tmp_path / "reference.gpkg"
    detect_to_file(scenes, PaintedPredictor(), reference, settings=settings)

    out = tmp_path / "out.gpkg"
    with pytest.raises(KeyboardInterrupt):
        detect_to_file(scenes, PaintedPredictor(interrupt_on_call=interrupt_on_call), out, settings=settings)
    assert not out.exists()
    journal = tmp_path / "out.gpkg.partial"
    assert len(list(journal.glob("*.npz"))) == interrupt_on_call - 1

    stale = tmp_path / ".out.gpkg.k1ll3d00.tmp"  # what a SIGKILLed sink leaves behind
    stale.mkdir()
    resumed_predictor = PaintedPredictor()
    resume = DetectSettings(tile_size=TILE, overlap=OVERLAP, batch_size=2, resume=True)
    summary = detect_to_file(scenes, resumed_predictor, out, settings=resume)
    assert summary.resumed_tiles == 2 * (interrupt_on_call - 1)
    total = sum(len(tile_windows(*shape, TILE, OVERLAP)) for shape in [(200, 260), (90, 130)])
    assert resumed_predictor.tiles_seen == total - summary.resumed_tiles
    assert not journal.exists() and not stale.exists()
    a, b = read_rows(reference), read_rows(out)
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()


def test_resume_refuses_a_journal_made_with_other_settings(utm_scene: PaintedScene, tmp_path: Path) -> None:
    from fsanet_geo.geo.detect.pipeline import detect_to_file

    out = tmp_path / "out.gpkg"
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([utm_scene.path], PaintedPredictor(interrupt_on_call=2), out,
                       settings=DetectSettings(tile_size=TILE, overlap=OVERLAP))
    with pytest.raises(ConfigError, match="other scenes or settings"):
        detect_to_file([utm_scene.path], PaintedPredictor(), out,
                       settings=DetectSettings(tile_size=TILE, overlap=OVERLAP + 4, resume=True))
    # without --resume the stale journal is replaced (with a warning) and the run completes
    with pytest.warns(StartingFreshWarning):
        detect_to_file([utm_scene.path], PaintedPredictor(), out,
                       settings=DetectSettings(tile_size=TILE, overlap=OVERLAP + 4))
    assert len(read_rows(out)) == len(utm_scene.boxes)


@hyp_settings(max_examples=12, deadline=None)
@given(
    height=st.integers(20, 150),
    width=st.integers(20, 150),
    tile=st.integers(24, 64),
    overlap_fraction=st.floats(0.25, 0.5),  # over half the tile is refused
    batch=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
# An object touching two tiles' inner edges: its two "truncated" copies tie on score; the
# larger (whole) one must win, not the one cut at row 28 (found by hypothesis, fixed).
@example(height=61, width=126, tile=28, overlap_fraction=0.34375, batch=1, seed=3550)
def test_any_tiling_finds_every_object_exactly_once(
    height: int, width: int, tile: int, overlap_fraction: float, batch: int, seed: int
) -> None:
    overlap = int(tile * overlap_fraction)
    max_size = max(1, min(overlap, 12))
    with tempfile.TemporaryDirectory() as tmp:
        scene = write_painted_scene(
            Path(tmp) / "s.tif", height=height, width=width, n_objects=12, seed=seed, max_size=max_size
        )
        gdf = detect_scene(scene.path, PaintedPredictor(), tile_size=tile, overlap=overlap, batch_size=batch)
    assert_found_exactly(gdf, scene.boxes, scene.labels, UTM_TRANSFORM)
