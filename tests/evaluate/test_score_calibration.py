"""The F1-best score cut: exact on hand-counted cases, and equal to a brute force over every cut."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.evaluate.class_counts import per_class_counts, total_counts
from fsanet_geo.evaluate.score_calibration import best_threshold, calibrate


def test_the_best_cut_is_counted_by_hand() -> None:
    # truth 4; by score: tp tp fp tp fp fp -> F1 .40 .67 .57 .75 .67 .60: cut 0.6, P = R = 0.75
    point = best_threshold(np.array([0.2, 0.9, 0.7, 0.8, 0.6, 0.3]),
                           np.array([False, True, False, True, True, False]), num_truth=4)
    assert point is not None
    assert point.score_thr == 0.6 and point.precision == 0.75 and point.recall == 0.75
    assert (point.tp, point.fp, point.fn) == (3, 1, 1)


def test_equal_scores_are_cut_together_and_ties_keep_the_higher_cut() -> None:
    # two detections at 0.5 (one true): a cut cannot keep one without the other
    point = best_threshold(np.array([0.5, 0.5, 0.9]), np.array([False, True, True]), num_truth=2)
    assert point is not None and point.score_thr == 0.5 and (point.tp, point.fp) == (2, 1)
    # F1 2/3 at 0.9 (1 tp) and at 0.4 (2 tp, 2 fp): the higher cut keeps fewer detections
    tie = best_threshold(np.array([0.9, 0.6, 0.5, 0.4]), np.array([True, False, False, True]), num_truth=2)
    assert tie is not None and tie.score_thr == 0.9 and tie.f1 == pytest.approx(2 / 3)
    same = best_threshold(np.array([0.9, 0.5, 0.4]), np.array([True, False, True]), num_truth=3)
    # F1 at 0.9: 2*1*(1/3)/(4/3) = .5; at 0.5: P .5 R 1/3 -> .4; at 0.4: P 2/3 R 2/3 -> .67
    assert same is not None and same.score_thr == 0.4


def test_nothing_to_calibrate_on() -> None:
    assert best_threshold(np.array([0.9]), np.array([False]), num_truth=3) is None
    assert best_threshold(np.array([]), np.array([], bool), num_truth=3) is None
    assert best_threshold(np.array([0.9]), np.array([True]), num_truth=0) is None


def _gt(boxes: list[tuple[int, int, list[float]]], classes: tuple[str, ...] = ("car", "ship")) -> dict[str, Any]:
    return {"images": [{"id": i, "width": 100, "height": 100} for i in (1, 2)],
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(classes)],
            "annotations": [{"id": j + 1, "image_id": im, "category_id": cat, "bbox": b, "iscrowd": 0}
                            for j, (im, cat, b) in enumerate(boxes)]}


def test_classes_get_their_own_cuts_and_the_overall_one_pools_them() -> None:
    gt = _gt([(1, 1, [0, 0, 10, 10]), (1, 1, [20, 0, 10, 10]), (1, 2, [50, 50, 10, 10])])
    dets = [  # cars: true at 0.9 and 0.3, a false one at 0.5; the ship: true at 0.2, false at 0.8
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [70, 70, 10, 10], "score": 0.5},
        {"image_id": 1, "category_id": 1, "bbox": [20, 0, 10, 10], "score": 0.3},
        {"image_id": 1, "category_id": 2, "bbox": [0, 80, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.2},
    ]
    cal = calibrate(gt, dets)
    assert cal is not None
    assert cal.per_class["car"].score_thr == 0.3 and cal.per_class["car"].f1 == pytest.approx(0.8)
    assert cal.per_class["ship"].score_thr == 0.2 and cal.per_class["ship"].recall == 1.0
    assert cal.thresholds(["ship", "car", "plane"]) == (0.2, 0.3, cal.overall.score_thr)
    record = cal.to_dict()
    assert record["iou"] == 0.5 and set(record["classes"]) == {"car", "ship"}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 2),
                          st.floats(0.05, 0.99)), min_size=1, max_size=25),
       st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 2)), min_size=1, max_size=12))
def test_the_cut_gives_the_best_f1_of_any_cut(det_cells: list[tuple[int, int, int, float]],
                                               truth_cells: list[tuple[int, int, int]]) -> None:
    gt = _gt([(1, c, [x * 10, y * 10, 8, 8]) for x, y, c in truth_cells])
    dets = [{"image_id": 1, "category_id": c, "bbox": [x * 10 + 1, y * 10, 8, 8], "score": round(s, 2)}
            for x, y, c, s in det_cells]
    cal = calibrate(gt, dets)

    def f1_at(cut: float) -> float:
        t = total_counts(per_class_counts(gt, dets, score_thr=cut, iou=0.5))
        return 0.0 if t.tp == 0 else 2 * t.tp / (2 * t.tp + t.fp + t.fn)

    best = max(f1_at(d["score"]) for d in dets)
    if best == 0.0:
        assert cal is None
        return
    assert cal is not None
    assert cal.overall.f1 == pytest.approx(best)
    assert f1_at(cal.overall.score_thr) == pytest.approx(best)
    assert all(f1_at(d["score"]) < best - 1e-12 for d in dets if d["score"] > cal.overall.score_thr)
