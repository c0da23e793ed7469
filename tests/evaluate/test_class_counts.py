"""Per-class precision and recall from COCO ground truth and results."""

from __future__ import annotations

import pytest

from fsanet_geo.evaluate.class_counts import per_class_counts, total_counts


def _gt() -> dict:
    return {
        "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
        "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "ship"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10]},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 20, 20]},
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [70, 70, 5, 5], "iscrowd": 1},
        ],
    }


def test_counts_per_class_at_threshold_and_iou() -> None:
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 10, 10], "score": 0.9},  # car TP
        {"image_id": 1, "category_id": 1, "bbox": [11, 11, 10, 10], "score": 0.8},  # duplicate: FP
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.9},  # wrong class: ship FP
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 20, 20], "score": 0.04},   # under threshold
        {"image_id": 2, "category_id": 1, "bbox": [70, 70, 5, 5], "score": 0.9},    # on a crowd box: FP
    ]
    counts = per_class_counts(_gt(), dets, score_thr=0.05)
    assert list(counts) == ["car", "ship"]
    assert (counts["car"].tp, counts["car"].fp, counts["car"].fn) == (1, 2, 1)
    assert (counts["ship"].tp, counts["ship"].fp, counts["ship"].fn) == (0, 1, 1)
    total = total_counts(counts)
    assert (total.tp, total.fp, total.fn) == (1, 3, 2)
    assert total.precision == pytest.approx(0.25) and total.recall == pytest.approx(1 / 3)


def test_iou_threshold_decides_a_shifted_box() -> None:
    # 10x10 truth, detection shifted by 3 px: IoU = 70 / 130 = 0.538
    dets = [{"image_id": 1, "category_id": 1, "bbox": [13, 10, 10, 10], "score": 0.9}]
    assert per_class_counts(_gt(), dets, score_thr=0.0, iou=0.5)["car"].tp == 1
    assert per_class_counts(_gt(), dets, score_thr=0.0, iou=0.6)["car"].tp == 0
