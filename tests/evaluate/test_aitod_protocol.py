"""The AI-TOD evaluator: equality with faster-coco-eval-aitod, hand cases, input errors."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError, DatasetError
from fsanet_geo.evaluate.aitod_protocol import HEADLINE_KEYS, evaluate_coco

SIZES = (3.0, 6.0, 10.0, 14.0, 20.0, 28.0, 40.0, 70.0)  # spans all four area ranges


def random_case(seed: int, n_images: int = 10) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GT + detections with every awkward feature the protocol must handle.

    - image 1: no GT, no detections; image 2: no GT but detections (false positives);
    - image 3: > 1500 detections of one class (truncation at maxDets);
    - image 4: > 100 detections; crowd boxes; a stray ``ignore`` flag;
    - category 5 has detections but no GT, category 7 has neither;
    - object sizes in all four area ranges.
    """
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 256, "height": 256, "file_name": f"{i}.png"} for i in range(n_images)]
    cats = [{"id": c, "name": f"class{c}"} for c in (1, 2, 3, 5, 7)]
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []

    def rand_box(size: float) -> list[float]:
        w = size * rng.uniform(0.7, 1.3)
        h = size * rng.uniform(0.7, 1.3)
        x, y = rng.uniform(0, 256 - w), rng.uniform(0, 256 - h)
        return [float(x), float(y), float(w), float(h)]

    for im in images[2:]:
        for _ in range(int(rng.integers(3, 25))):
            box = rand_box(float(rng.choice(SIZES)))
            ann = {
                "id": len(anns) + 1,
                "image_id": im["id"],
                "category_id": int(rng.choice([1, 2, 3])),
                "bbox": box,
                "area": box[2] * box[3] * float(rng.uniform(0.9, 1.0)),
                "iscrowd": int(rng.random() < 0.08),
            }
            if rng.random() < 0.05:
                ann["ignore"] = 1
            anns.append(ann)
            if rng.random() < 0.75:  # a jittered true detection
                x, y, w, h = box
                jit = rng.normal(0, max(0.5, 0.12 * w), 2)
                dets.append({
                    "image_id": im["id"],
                    "category_id": ann["category_id"] if rng.random() < 0.9 else 5,
                    "bbox": [float(x + jit[0]), float(y + jit[1]), float(w * rng.uniform(0.8, 1.2)), float(h)],
                    "score": float(rng.uniform(0.2, 1.0)),
                })

    def clutter(image_id: int, n: int, cat_choices: list[int]) -> None:
        for _ in range(n):
            dets.append({
                "image_id": image_id,
                "category_id": int(rng.choice(cat_choices)),
                "bbox": rand_box(float(rng.choice(SIZES))),
                "score": float(rng.uniform(0.0, 0.6)),
            })

    clutter(2, 30, [1, 2, 3, 5])
    clutter(3, 1600, [1])
    clutter(4, 140, [1, 2, 3])
    return {"images": images, "annotations": anns, "categories": cats}, dets


def oracle(gt: dict[str, Any], dets: list[dict[str, Any]]) -> dict[str, Any]:
    """faster-coco-eval-aitod (aitodpycocotools mode): its summarize() and per-class AP."""
    from faster_coco_eval_aitod import COCO, COCOeval_faster

    coco_gt = COCO(copy.deepcopy(gt))
    coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=lambda *a, **k: None)
    ev.evaluate()
    ev.accumulate()
    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    s = ev.stats
    stats = {
        "AP": s[0], "AP50": s[2], "AP75": s[3], "APvt": s[4], "APt": s[5], "APs": s[6], "APm": s[7],
        "AR1": s[8], "AR100": s[9], "AR": s[10], "ARvt": s[11],
    }
    precision = np.asarray(ev.eval["precision"])
    per_class = {}
    for k, cat in enumerate(sorted(gt["categories"], key=lambda c: c["id"])):
        p = precision[:, :, k, 0, -1]
        per_class[cat["name"]] = float(p[p > -1].mean()) if np.any(p > -1) else -1.0
    return {"stats": stats, "per_class": per_class, "precision": precision}


def assert_matches_oracle(gt: dict[str, Any], dets: list[dict[str, Any]]) -> None:
    ours = evaluate_coco(gt, dets)
    ref = oracle(gt, dets)
    for key, value in ref["stats"].items():
        assert ours.stats[key] == pytest.approx(value, abs=1e-4), key
    assert ours.per_class == pytest.approx(ref["per_class"], abs=1e-4)
    np.testing.assert_allclose(ours.precision, ref["precision"], atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_equal_faster_coco_eval_aitod(seed: int) -> None:
    gt, dets = random_case(seed)
    # the generator really produces the awkward features
    assert sum(d["image_id"] == 3 and d["category_id"] == 1 for d in dets) > 1500
    assert sum(a["iscrowd"] for a in gt["annotations"]) > 0
    areas = np.array([a["area"] for a in gt["annotations"]])
    for lo, hi in ((0, 64), (64, 256), (256, 1024), (1024, 1e10)):
        assert np.any((areas >= lo) & (areas < hi))
    assert_matches_oracle(gt, dets)
    result = evaluate_coco(gt, dets)
    assert result.per_class["class7"] == -1.0  # no GT, no detections
    assert result.per_class["class5"] == -1.0  # detections but no GT: undefined, not 0
    assert 0.0 < result.stats["AP"] < 1.0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_images=st.integers(1, 6))
def test_property_equal_to_oracle(seed: int, n_images: int) -> None:
    gt, dets = random_case(seed, n_images=n_images + 4)
    assert_matches_oracle(gt, dets)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_detection_order_does_not_matter(seed: int) -> None:
    gt, dets = random_case(seed, n_images=5)
    dets = [d for d in dets if d["image_id"] != 3]  # keep it small and tie-free
    shuffled = list(dets)
    np.random.default_rng(seed).shuffle(shuffled)
    a, b = evaluate_coco(gt, dets), evaluate_coco(gt, shuffled)
    assert a.stats == pytest.approx(b.stats, abs=1e-12)


def test_inputs_are_not_modified() -> None:
    gt, dets = random_case(3, n_images=4)
    gt_before, dets_before = copy.deepcopy(gt), copy.deepcopy(dets)
    evaluate_coco(gt, dets)
    assert gt == gt_before
    assert dets == dets_before


# ---------------------------------------------------------------- hand cases


def make_gt(boxes: list[list[float]], cats: list[int] | None = None, crowd: list[int] | None = None) -> dict[str, Any]:
    cats = cats or [1] * len(boxes)
    crowd = crowd or [0] * len(boxes)
    return {
        "images": [{"id": 1, "width": 200, "height": 200}],
        "categories": [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "ship"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": k}
            for i, (b, c, k) in enumerate(zip(boxes, cats, crowd))
        ],
    }


def det(box: list[float], score: float, cat: int = 1) -> dict[str, Any]:
    return {"image_id": 1, "category_id": cat, "bbox": box, "score": score}


# one box per area range: 4x4 very tiny, 12x12 tiny, 20x20 small, 40x40 medium
RANGE_BOXES = [[10, 10, 4, 4], [30, 30, 12, 12], [60, 60, 20, 20], [100, 100, 40, 40]]


def test_perfect_detections_give_ap_one_everywhere() -> None:
    gt = make_gt(RANGE_BOXES)
    result = evaluate_coco(gt, [det(b, 0.9 - 0.1 * i) for i, b in enumerate(RANGE_BOXES)])
    for key in HEADLINE_KEYS:
        assert result.stats[key] == pytest.approx(1.0), key
    assert result.stats["AR"] == pytest.approx(1.0)
    assert result.per_class == {"vehicle": pytest.approx(1.0), "ship": -1.0}


def test_half_found_with_top_scores() -> None:
    gt = make_gt(RANGE_BOXES)
    # the very tiny and the medium box found exactly, with the two highest scores
    result = evaluate_coco(gt, [det(RANGE_BOXES[0], 0.9), det(RANGE_BOXES[3], 0.8)])
    # precision 1 on recall points 0.00..0.50 (51 of 101), 0 beyond
    assert result.stats["AP"] == pytest.approx(51 / 101)
    assert result.stats["AP50"] == pytest.approx(51 / 101)
    assert result.stats["APvt"] == pytest.approx(1.0)
    assert result.stats["APt"] == 0.0
    assert result.stats["APs"] == 0.0
    assert result.stats["APm"] == pytest.approx(1.0)
    assert result.stats["AR"] == pytest.approx(0.5)


def test_false_positive_on_top_lowers_precision() -> None:
    gt = make_gt(RANGE_BOXES)
    dets = [det([150, 150, 10, 10], 0.95), det(RANGE_BOXES[0], 0.9), det(RANGE_BOXES[3], 0.8)]
    result = evaluate_coco(gt, dets)
    # precisions 0/1, 1/2, 2/3 at recalls 0, .25, .5; interpolated: 2/3 up to recall .5
    assert result.stats["AP"] == pytest.approx(51 / 101 * 2 / 3)


def test_partial_iou_counts_for_the_lower_thresholds_only() -> None:
    gt = make_gt([[0, 0, 10, 10]])
    result = evaluate_coco(gt, [det([0, 0, 10, 6.2], 0.5)])  # IoU 0.62
    assert result.stats["AP50"] == pytest.approx(1.0)
    assert result.stats["AP75"] == 0.0
    assert result.stats["AP"] == pytest.approx(0.3)  # matched at .50, .55, .60


def test_crowd_box_is_ignored_not_missed() -> None:
    boxes = [[10, 10, 20, 20], [100, 100, 20, 20]]
    dets = [det(boxes[0], 0.9)]
    assert evaluate_coco(make_gt(boxes, crowd=[0, 1]), dets).stats["AP"] == pytest.approx(1.0)
    assert evaluate_coco(make_gt(boxes, crowd=[0, 0]), dets).stats["AP"] == pytest.approx(51 / 101)
    # a detection on a crowd region is no false positive either
    dets_on_crowd = [det(boxes[1], 0.95), det(boxes[0], 0.9)]
    assert evaluate_coco(make_gt(boxes, crowd=[0, 1]), dets_on_crowd).stats["AP"] == pytest.approx(1.0)


def test_max_dets_truncates_per_image_and_class() -> None:
    gt = make_gt([[10, 10, 10, 10]])
    clutter = [det([150 + (i % 40), 150, 5, 5], 0.5 + i * 1e-5) for i in range(1600)]
    dets = [*clutter, det([10, 10, 10, 10], 0.1)]  # the true one has the lowest score
    assert evaluate_coco(gt, dets).stats["AP"] == 0.0
    assert evaluate_coco(gt, dets).stats["AR"] == 0.0
    wide = evaluate_coco(gt, dets, max_dets=2000)
    assert wide.stats["AR"] == pytest.approx(1.0)
    assert wide.stats["AP"] == pytest.approx(1 / 1601, rel=0.05)
    assert wide.max_dets == [1, 100, 2000]


def test_empty_detections_give_zero_and_absent_classes_minus_one() -> None:
    gt = make_gt(RANGE_BOXES[:2])
    result = evaluate_coco(gt, [])
    assert result.stats["AP"] == 0.0
    assert result.stats["APvt"] == 0.0
    assert result.stats["APs"] == -1.0  # no GT in the small range: undefined
    assert result.per_class == {"vehicle": 0.0, "ship": -1.0}
    assert result.counts == {"images": 1, "ground_truth": 2, "crowd": 0, "detections": 0}


def test_no_ground_truth_at_all_is_undefined() -> None:
    gt = make_gt([])
    result = evaluate_coco(gt, [det([1, 1, 5, 5], 0.5)])
    assert all(v == -1.0 for v in result.stats.values())
    no_images = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    assert evaluate_coco(no_images, []).stats["AP"] == -1.0


def test_missing_area_and_ids_are_filled_from_the_box() -> None:
    gt = make_gt(RANGE_BOXES)
    for ann in gt["annotations"]:
        del ann["area"], ann["id"], ann["iscrowd"]
    result = evaluate_coco(gt, [det(RANGE_BOXES[1], 0.9)])
    assert result.stats["APt"] == pytest.approx(1.0)
    assert result.stats["APvt"] == 0.0


def test_files_and_dicts_give_the_same_result(tmp_path: Path) -> None:
    gt, dets = random_case(5, n_images=4)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    a = evaluate_coco(tmp_path / "gt.json", tmp_path / "dets.json")
    b = evaluate_coco(gt, dets)
    assert a.stats == b.stats
    d = a.to_dict()
    json.dumps(d)  # JSON-safe
    assert d["stats"]["AP"] == a.stats["AP"]
    assert d["protocol"]["area_ranges"]["tiny"] == [64.0, 256.0]
    assert set(d["per_class_ap"]) == {"class1", "class2", "class3", "class5", "class7"}


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("dets", "message"),
    [
        ({"image_id": 1}, "must be a JSON list"),
        ([{"image_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "missing 'category_id'"),
        ([det([0, 0, 1, 1], 0.5) | {"image_id": 99}], "image ids not in the ground truth"),
        ([det([0, 0, 1, 1], 0.5, cat=9)], "category ids not in the ground truth"),
        ([det([0, 0, 1], 0.5)], "bad bbox"),
        ([det([0, 0, -1, 1], 0.5)], "negative box"),
        ([det([0, 0, 1, 1], float("nan"))], "score"),
        (["not a dict"], "not an object"),
    ],
)
def test_bad_detections_raise_dataset_error(dets: Any, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        evaluate_coco(make_gt([[0, 0, 5, 5]]), dets)


def test_bad_ground_truth_and_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing list 'annotations'"):
        evaluate_coco({"images": [], "categories": []}, [])
    with pytest.raises(DatasetError, match="unknown category id"):
        gt = make_gt([[0, 0, 5, 5]], cats=[4])
        evaluate_coco(gt, [])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        evaluate_coco(bad, [])
    with pytest.raises(DatasetError, match="does not exist"):
        evaluate_coco(make_gt([]), tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        evaluate_coco(make_gt([]), [], max_dets=0)


def test_equal_to_pycocotools_with_aitod_params() -> None:
    """A third implementation: the original pycocotools, given the AI-TOD parameters."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, dets = random_case(7)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dets)), "bbox")
        ev.params.maxDets = [1, 100, 1500]
        ev.params.areaRng = [[0, 1e10], [0, 64], [64, 256], [256, 1024], [1024, 1e10]]
        ev.params.areaRngLbl = ["all", "verytiny", "tiny", "small", "medium"]
        ev.evaluate()
        ev.accumulate()
    ours = evaluate_coco(gt, dets)
    np.testing.assert_allclose(ours.precision, ev.eval["precision"], atol=1e-6)
    np.testing.assert_allclose(ours.recall, ev.eval["recall"], atol=1e-6)
