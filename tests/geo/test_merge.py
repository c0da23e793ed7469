"""Cross-tile merge: seams, truncation, streaming, and equality with the brute-force NMS.

The pair finder and overlap kernels it uses are tested in tests/ops.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.geo.detections import Detections
from fsanet_geo.geo.seams.merge import SeamMerger, brute_force_merge
from fsanet_geo.geo.windows import TileWindow


def grid(height: int, width: int, tile: int, overlap: int) -> list[TileWindow]:
    """Regular grid with overlap, last row/column shifted inward (local: tiling.py is not used)."""

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        return sorted(set(range(0, n - tile, tile - overlap)) | {n - tile})

    return [TileWindow(r, c, min(tile, height), min(tile, width)) for r in starts(height) for c in starts(width)]


def dets(boxes: list[list[float]], scores: list[float], labels: list[int] | None = None, tile: int = -1) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, float).reshape(n, 4), scores, labels or [0] * n, np.full(n, tile))


def observe(objects: np.ndarray, labels: np.ndarray, windows: list[TileWindow], t: int, scores: np.ndarray) -> Detections:
    """What a perfect predictor sees in tile t: every object meeting the window, clipped to it."""
    w = windows[t]
    seen = (objects[:, 2] > w.col_off) & (objects[:, 0] < w.col_end) & (objects[:, 3] > w.row_off) & (
        objects[:, 1] < w.row_end
    )
    b = objects[seen].copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(w.col_off, w.col_end)
    b[:, [1, 3]] = b[:, [1, 3]].clip(w.row_off, w.row_end)
    return Detections(b, scores[seen], labels[seen], np.full(len(b), t))


def canonical(d: Detections) -> Detections:
    order = np.lexsort((d.scores, d.labels, *d.boxes.T[::-1], d.tile))
    return d.select(order)


def run_stream(merger: SeamMerger, per_tile: list[Detections], order: list[int]) -> Detections:
    out = [merger.add(t, per_tile[t]) for t in order]
    out.append(merger.finish())
    return Detections.concat(out)


# -- hand-made cases ------------------------------------------------------------------------

TWO = [TileWindow(0, 0, 100, 100), TileWindow(0, 60, 100, 100)]  # scene 100 x 160, seam cols 60..100


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_box_cut_by_tile_edge_loses_to_whole_twin(order: list[int]) -> None:
    per_tile = [
        dets([[90, 10, 100, 20]], [0.95], tile=0),  # cut by tile 0's right edge (interior)
        dets([[90, 10, 110, 20]], [0.40], tile=1),  # the whole object
    ]
    merger = SeamMerger(TWO, 100, 160)
    out = canonical(run_stream(merger, per_tile, order))
    assert out.boxes.tolist() == [[90, 10, 110, 20]]
    assert out.scores.tolist() == [pytest.approx(0.40)]
    assert out.tile.tolist() == [1]


def test_higher_score_wins_between_two_whole_twins_and_ios_beats_iou_for_cut_boxes() -> None:
    per_tile = [dets([[70, 10, 80, 20]], [0.5], tile=0), dets([[71, 10, 81, 20]], [0.7], tile=1)]
    out = run_stream(SeamMerger(TWO, 100, 160), per_tile, [0, 1])
    assert out.boxes.tolist() == [[71, 10, 81, 20]] and out.tile.tolist() == [1]
    # A cut copy covering 1/4 of its twin: IoU 0.25 keeps both, ios 1.0 merges them.
    cut = [dets([[90, 10, 100, 20]], [0.9], tile=0), dets([[90, 10, 130, 20]], [0.8], tile=1)]
    assert len(run_stream(SeamMerger(TWO, 100, 160, metric="iou"), cut, [0, 1])) == 2
    assert len(run_stream(SeamMerger(TWO, 100, 160, metric="ios"), cut, [0, 1])) == 1


def test_class_aware_keeps_overlapping_objects_of_other_classes() -> None:
    per_tile = [dets([[70, 10, 80, 20]], [0.5], [0], tile=0), dets([[70, 10, 80, 20]], [0.7], [1], tile=1)]
    assert len(run_stream(SeamMerger(TWO, 100, 160), per_tile, [0, 1])) == 2
    assert len(run_stream(SeamMerger(TWO, 100, 160, class_aware=False), per_tile, [0, 1])) == 1


def test_detections_of_the_same_tile_never_suppress_each_other() -> None:
    per_tile = [dets([[70, 10, 80, 20], [70, 10, 80, 20]], [0.9, 0.8], tile=0), Detections()]
    assert len(run_stream(SeamMerger(TWO, 100, 160), per_tile, [0, 1])) == 2


def test_far_from_seams_is_final_at_once_and_seam_detections_wait() -> None:
    merger = SeamMerger(TWO, 100, 160)
    first = merger.add(0, dets([[5, 5, 15, 15], [65, 5, 75, 15], [50, 40, 60, 50]], [0.9, 0.8, 0.7]))
    # [5,5,15,15] and [50,40,60,50] (ends exactly on the seam start 60) meet no other window.
    assert canonical(first).boxes.tolist() == [[5, 5, 15, 15], [50, 40, 60, 50]]
    assert merger.pending == 1
    second = merger.add(1, dets([[150, 5, 159, 15]], [0.6]))
    assert {tuple(b) for b in second.boxes.tolist()} == {(65, 5, 75, 15), (150, 5, 159, 15)}
    assert merger.pending == 0 and len(merger.finish()) == 0


def test_every_object_found_once_on_a_2x2_grid() -> None:
    windows = grid(200, 200, 120, 40)  # seams at 80..120 both ways
    assert len(windows) == 4
    objects = np.array(
        [
            [10, 10, 20, 20],  # tile 0 only
            [95, 30, 110, 40],  # vertical seam
            [30, 100, 40, 115],  # horizontal seam
            [90, 90, 110, 110],  # the 4-tile corner
            [75, 150, 90, 160],  # crosses the seam start: cut in tile 1, whole in tile 3
            [112, 70, 130, 84],  # crosses two seam edges
            [185, 185, 199, 199],  # scene corner
        ],
        float,
    )
    labels = np.zeros(len(objects), np.int64)
    rng = np.random.default_rng(3)
    per_tile = [observe(objects, labels, windows, t, rng.uniform(0.3, 1, len(objects))) for t in range(4)]
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        out = canonical(run_stream(SeamMerger(windows, 200, 200), per_tile, order))
        assert sorted(map(tuple, out.boxes.tolist())) == sorted(map(tuple, objects.tolist()))


def test_soft_nms_decays_hand_computed() -> None:
    a = [[70, 10, 80, 20]]  # area 100
    b = [[72, 10, 82, 20]]  # intersection 80: ios 0.8, iou 80 / 120
    per_tile = [dets(a, [0.9], tile=0), dets(b, [0.6], tile=1)]
    out = canonical(run_stream(SeamMerger(TWO, 100, 160, method="linear", iou_threshold=0.3), per_tile, [1, 0]))
    assert out.scores.tolist() == pytest.approx([0.9, 0.6 * (1 - 0.8)], abs=1e-7)
    out = canonical(run_stream(SeamMerger(TWO, 100, 160, method="gaussian", sigma=0.5, metric="iou"), per_tile, [0, 1]))
    assert out.scores.tolist() == pytest.approx([0.9, 0.6 * math.exp(-((80 / 120) ** 2) / 0.5)], abs=1e-7)
    # below the threshold the linear variant leaves the score alone; below min_score it drops
    out = run_stream(SeamMerger(TWO, 100, 160, method="linear", iou_threshold=0.85), per_tile, [0, 1])
    assert sorted(out.scores.tolist()) == pytest.approx([0.6, 0.9])
    out = run_stream(SeamMerger(TWO, 100, 160, method="linear", iou_threshold=0.3, min_score=0.2), per_tile, [0, 1])
    assert out.scores.tolist() == pytest.approx([0.9])


def test_chain_across_zones_waits_for_the_whole_component() -> None:
    """A suppressed box no longer suppresses: the middle one decides the fate of the last."""
    windows = [TileWindow(0, 0, 100, 100), TileWindow(0, 60, 100, 100), TileWindow(0, 120, 100, 100)]
    # ios(first, middle) = ios(middle, last) = 80 / 120 > 0.5; first and last are disjoint
    per_tile = [
        dets([[84, 10, 96, 20]], [0.9], tile=0),
        dets([[88, 10, 130, 20]], [0.8], tile=1),  # wide: meets tiles 0, 1 and 2
        dets([[122, 10, 134, 20]], [0.7], tile=2),
    ]
    options = dict(metric="ios", iou_threshold=0.5)
    expected = canonical(brute_force_merge(Detections.concat(per_tile), windows, 100, 220, **options))
    assert sorted(expected.scores.tolist()) == pytest.approx([0.7, 0.9])  # 0.8 suppressed, so 0.7 survives
    for order in ([0, 1, 2], [2, 0, 1], [1, 2, 0]):
        got = canonical(run_stream(SeamMerger(windows, 100, 220, **options), per_tile, order))
        np.testing.assert_array_equal(got.boxes, expected.boxes)


def test_finish_requires_every_tile_unless_allowed() -> None:
    merger = SeamMerger(TWO, 100, 160)
    merger.add(0, dets([[90, 10, 100, 20]], [0.9]))
    assert merger.pending == 1
    with pytest.raises(ValueError, match="1 of 2 tiles were never added"):
        merger.finish()
    out = merger.finish(allow_missing=True)
    assert out.boxes.tolist() == [[90, 10, 100, 20]] and merger.pending == 0
    with pytest.raises(ValueError, match="finished"):
        merger.add(1, Detections())


def test_bad_tiles_and_options_are_refused() -> None:
    merger = SeamMerger(TWO, 100, 160)
    merger.add(0, Detections())
    with pytest.raises(ValueError, match="already added"):
        merger.add(0, Detections())
    with pytest.raises(ValueError, match="out of range"):
        merger.add(2, Detections())
    with pytest.raises(ConfigError, match="threshold"):
        SeamMerger(TWO, 100, 160, iou_threshold=1.5)
    with pytest.raises(ConfigError, match="method"):
        SeamMerger(TWO, 100, 160, method="fancy")  # type: ignore[arg-type]


def test_boxes_are_clipped_to_their_tile_and_empty_ones_dropped() -> None:
    out = run_stream(SeamMerger(TWO, 100, 160), [dets([[-5, -5, 10, 10], [120, 0, 130, 10]], [0.5, 0.5]), Detections()], [0, 1])
    assert out.boxes.tolist() == [[0, 0, 10, 10]]  # the second lies outside tile 0: dropped


def test_window_larger_than_the_scene_is_clipped_and_its_edges_are_scene_edges() -> None:
    merger = SeamMerger([TileWindow(0, 0, 100, 100)], 50, 70)  # small scene padded to a tile
    out = merger.add(0, dets([[60, 40, 90, 60], [0, 0, 5, 5]], [0.6, 0.5]))
    assert out.boxes.tolist() == [[60, 40, 70, 50], [0, 0, 5, 5]]  # clipped to the scene, final
    assert out.scores.tolist() == [np.float32(0.6), np.float32(0.5)]  # hard NMS keeps scores
    assert merger.pending == 0


def test_memory_is_released_in_raster_order() -> None:
    windows = grid(1000, 1000, 200, 40)
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 980, (3000, 2))
    objects = np.c_[xy, xy + rng.uniform(4, 16, (3000, 2))].clip(0, 1000)
    labels = rng.integers(0, 2, 3000)
    scores = rng.uniform(0.2, 1, 3000)
    merger = SeamMerger(windows, 1000, 1000)
    peak = 0
    total = 0
    for t in range(len(windows)):
        total += len(merger.add(t, observe(objects, labels, windows, t, scores)))
        peak = max(peak, merger.pending)
    assert merger.pending == 0 and len(merger.finish()) == 0
    # only about one row of seams is ever held, far less than all detections
    assert peak < 0.3 * total


# -- properties ---------------------------------------------------------------------------------


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[TileWindow], int, int, list[Detections], dict, list[int]]:
    tile = draw(st.integers(16, 50))
    overlap = draw(st.integers(0, tile // 2))
    height = draw(st.integers(10, 160))
    width = draw(st.integers(30, 160))  # mostly several tiles
    windows = grid(height, width, tile, overlap)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_obj = draw(st.integers(0, 40))
    xy = rng.uniform(-5, [width, height], (n_obj, 2))
    objects = np.c_[xy, xy + rng.uniform(1, 25, (n_obj, 2))]
    labels = rng.integers(0, 2, n_obj)
    levels = np.array([0.3, 0.5, 0.5, 0.8, 1.0])  # repeated values make score ties
    per_tile = []
    for t in range(len(windows)):
        d = observe(objects, labels, windows, t, levels[rng.integers(0, 5, n_obj)])
        k = len(d)
        jitter = rng.choice([0.0, 0.0, 0.5, 2.0]) * rng.normal(size=(k, 4))
        extra = rng.uniform(0, [width, height, width, height], (rng.integers(0, 3), 4))
        extra[:, 2:] = extra[:, :2] + rng.uniform(1, 10, (len(extra), 2))
        boxes = np.concatenate([d.boxes + jitter, extra])  # jittered twins, cut copies, noise
        scores = np.concatenate([d.scores, rng.uniform(0, 1, len(extra))])
        labs = np.concatenate([d.labels, rng.integers(0, 2, len(extra))])
        per_tile.append(Detections(boxes, scores, labs, np.full(len(boxes), t)))
    options = dict(
        iou_threshold=draw(st.sampled_from([0.0, 0.3, 0.5, 0.9])),
        metric=draw(st.sampled_from(["ios", "iou"])),
        method=draw(st.sampled_from(["hard", "hard", "linear", "gaussian"])),
        min_score=draw(st.sampled_from([1e-3, 0.2])),
        class_aware=draw(st.booleans()),
        edge_margin=draw(st.sampled_from([0.0, 1.0, 3.0])),
    )
    order = draw(st.permutations(list(range(len(windows)))))
    return windows, height, width, per_tile, options, order


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_streamed_merge_equals_brute_force(case: tuple) -> None:
    windows, height, width, per_tile, options, order = case
    everything = Detections.concat(per_tile)
    expected = canonical(brute_force_merge(everything, windows, height, width, **options))
    got = canonical(run_stream(SeamMerger(windows, height, width, **options), per_tile, order))
    event(f"tiles > 1: {len(windows) > 1}; some merged: {len(expected) < len(everything)}")
    np.testing.assert_array_equal(got.boxes, expected.boxes)
    np.testing.assert_array_equal(got.scores, expected.scores)
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_array_equal(got.tile, expected.tile)
