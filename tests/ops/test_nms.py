"""Per-class hard and soft NMS (fsanet_geo.ops.nms) on hand cases, against brute force
and against torchvision."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_cases import random_boxes
from torchvision.ops import batched_nms as tv_batched_nms
from torchvision.ops import box_iou

from fsanet_geo.errors import ConfigError
from fsanet_geo.ops.nms import batched_nms, soft_nms

# IoU(A, B) = 60 / 100 = 0.6; IoU(A, C) = 0; IoU(A, D) = 40 / 100 = 0.4.
A = [0.0, 0.0, 10.0, 10.0]
B = [0.0, 0.0, 10.0, 6.0]
C = [50.0, 50.0, 60.0, 60.0]
D = [0.0, 0.0, 10.0, 4.0]


def _nms(boxes, scores, labels, method, **kwargs):
    return batched_nms(
        torch.tensor(boxes),
        torch.tensor(scores),
        torch.tensor(labels),
        0.5,
        method=method,
        **kwargs,
    )


def test_linear_soft_nms_decays_by_one_minus_iou() -> None:
    keep, scores = _nms([A, B, C], [0.9, 0.8, 0.5], [0, 0, 0], "linear")
    assert keep.tolist() == [0, 2, 1]  # B drops below C after its decay
    assert torch.allclose(scores, torch.tensor([0.9, 0.5, 0.8 * 0.4]))


def test_linear_soft_nms_leaves_boxes_under_the_threshold() -> None:
    keep, scores = _nms([A, D], [0.9, 0.8], [0, 0], "linear")
    assert keep.tolist() == [0, 1]
    assert torch.allclose(scores, torch.tensor([0.9, 0.8]))


def test_gaussian_soft_nms_decays_every_overlap() -> None:
    keep, scores = _nms([A, B, D], [0.9, 0.8, 0.7], [0, 0, 0], "gaussian", sigma=0.5)
    # After A: B = 0.8 * exp(-0.36 / 0.5) = 0.389, D = 0.7 * exp(-0.16 / 0.5) = 0.508, so D
    # is picked next and decays B again by IoU(B, D) = 40 / 60.
    d = 0.7 * math.exp(-0.16 / 0.5)
    b = 0.8 * math.exp(-0.36 / 0.5) * math.exp(-((2 / 3) ** 2) / 0.5)
    assert keep.tolist() == [0, 2, 1]
    assert torch.allclose(scores, torch.tensor([0.9, d, b]), rtol=1e-5)


def test_soft_nms_drops_scores_below_min_score() -> None:
    keep, scores = _nms([A, B, C], [0.9, 0.002, 0.0005], [0, 0, 0], "linear", min_score=1e-3)
    assert keep.tolist() == [0]  # B: 0.002 * 0.4 < 1e-3; C starts below it
    assert scores.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize("method", ["hard", "linear", "gaussian"])
def test_boxes_of_different_classes_never_suppress_each_other(method: str) -> None:
    keep, scores = _nms([A, A, B], [0.9, 0.8, 0.7], [0, 1, 2], method)
    assert sorted(keep.tolist()) == [0, 1, 2]
    assert torch.allclose(scores, torch.tensor([0.9, 0.8, 0.7]))


def test_hard_nms_per_class() -> None:
    keep, scores = _nms([A, B, D, C], [0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0], "hard")
    assert keep.tolist() == [0, 2, 3]  # B (IoU 0.6 > 0.5) suppressed, D (0.4) kept
    assert scores.tolist() == pytest.approx([0.9, 0.7, 0.6])


def test_empty_input_and_unknown_method() -> None:
    for method in ("hard", "linear", "gaussian"):
        keep, scores = batched_nms(
            torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5, method
        )
        assert keep.shape == (0,) and scores.shape == (0,)
    with pytest.raises(ConfigError, match="soft"):
        _nms([A], [0.5], [0], "soft")
    with pytest.raises(ConfigError, match="soft-NMS method"):
        soft_nms(torch.tensor([A]), torch.tensor([0.5]), 0.5, "hard")  # type: ignore[arg-type]


def _brute_force_nms(boxes: list, scores: list, labels: list, thr: float) -> list[int]:
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        area_a = (a[2] - a[0]) * (a[3] - a[1])
        area_b = (b[2] - b[0]) * (b[3] - b[1])
        return inter / (area_a + area_b - inter)

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        if all(labels[k] != labels[i] or iou(boxes[k], boxes[i]) <= thr for k in keep):
            keep.append(i)
    return keep


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 40),
    classes=st.integers(1, 3),
    thr=st.sampled_from([0.1, 0.3, 0.5, 0.7]),
)
def test_hard_nms_equals_brute_force(seed: int, n: int, classes: int, thr: float) -> None:
    boxes, scores, labels = random_boxes(seed, n, classes)
    keep, kept_scores = batched_nms(boxes, scores, labels, thr, "hard")
    expected = _brute_force_nms(boxes.tolist(), scores.tolist(), labels.tolist(), thr)
    assert keep.tolist() == expected
    assert torch.equal(kept_scores, scores[keep])


def _brute_force_soft_nms(boxes, scores, labels, thr, method, sigma, min_score):
    current = {i: s for i, s in enumerate(scores.tolist()) if s >= min_score}
    result = []
    while current:
        top = max(current, key=lambda i: current[i])
        result.append((top, current.pop(top)))
        for j in list(current):
            if labels[j] != labels[top]:
                continue
            iou = box_iou(boxes[top : top + 1], boxes[j : j + 1]).item()
            if method == "linear":
                current[j] *= (1 - iou) if iou > thr else 1.0
            else:
                current[j] *= math.exp(-iou * iou / sigma)
            if current[j] < min_score:
                del current[j]
    result.sort(key=lambda pair: -pair[1])
    return result


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 30),
    classes=st.integers(1, 3),
    method=st.sampled_from(["linear", "gaussian"]),
)
def test_soft_nms_equals_brute_force(seed: int, n: int, classes: int, method: str) -> None:
    boxes, scores, labels = random_boxes(seed, n, classes)
    keep, new_scores = batched_nms(boxes, scores, labels, 0.3, method, sigma=0.5, min_score=0.05)
    expected = _brute_force_soft_nms(boxes, scores, labels.tolist(), 0.3, method, 0.5, 0.05)
    assert torch.allclose(new_scores, torch.tensor([s for _, s in expected], dtype=torch.float64))
    assert set(keep.tolist()) == {i for i, _ in expected}
    assert torch.all(new_scores[:-1] >= new_scores[1:])


def test_single_class_soft_nms_keeps_pick_order() -> None:
    keep, scores = soft_nms(torch.tensor([A, B, C]), torch.tensor([0.9, 0.8, 0.5]), 0.5, "linear")
    assert keep.tolist() == [0, 2, 1]
    assert torch.allclose(scores, torch.tensor([0.9, 0.5, 0.32]))


def test_soft_nms_tie_goes_to_the_lower_index() -> None:
    keep, scores = _nms([C, A, A], [0.5, 0.5, 0.5], [0, 0, 0], "gaussian")
    assert keep.tolist() == [0, 1, 2]
    assert torch.allclose(scores, torch.tensor([0.5, 0.5, 0.5 * math.exp(-1 / 0.5)]))
    keep, scores = _nms([A, A], [0.5, 0.5], [0, 0], "linear")
    assert keep.tolist() == [0]  # IoU 1: decayed to 0, below min_score


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 40),
    classes=st.integers(1, 3),
    thr=st.sampled_from([0.0, 0.2, 0.5, 0.8]),
)
def test_hard_nms_keeps_a_set_without_overlap_above_the_threshold(
    seed: int, n: int, classes: int, thr: float
) -> None:
    """Kept boxes of one label overlap at most ``thr``; each dropped box overlaps more than
    ``thr`` a kept box of its label with a higher score."""
    boxes, scores, labels = random_boxes(seed, n, classes)
    keep, _ = batched_nms(boxes, scores, labels, thr, "hard")
    iou = box_iou(boxes, boxes)
    same = labels[:, None] == labels[None, :]
    kept = torch.zeros(n, dtype=torch.bool)
    kept[keep] = True
    between_kept = iou[kept][:, kept] * same[kept][:, kept]
    assert torch.all(between_kept.fill_diagonal_(0) <= thr)
    for i in torch.nonzero(~kept).flatten().tolist():
        assert bool(((iou[i] > thr) & same[i] & kept & (scores > scores[i])).any())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 40), classes=st.integers(1, 3))
def test_gaussian_soft_nms_with_a_tiny_sigma_is_hard_nms_at_zero(seed: int, n: int, classes: int) -> None:
    """exp(-iou^2 / sigma) underflows to 0 for any positive IoU of these boxes (>= 1 / 721)
    when sigma = 1e-9: every overlapped box drops below min_score, as torchvision's hard NMS
    with threshold 0 removes it, and kept scores never decay."""
    boxes, scores, labels = random_boxes(seed, n, classes)
    keep, new_scores = batched_nms(boxes, scores, labels, 0.5, "gaussian", sigma=1e-9, min_score=1e-3)
    expected = tv_batched_nms(boxes, scores, labels, 0.0)
    assert keep.tolist() == expected.tolist()
    assert torch.equal(new_scores, scores[expected])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 40),
    method=st.sampled_from(["linear", "gaussian"]),
    thr=st.sampled_from([0.0, 0.3, 0.7]),
)
def test_soft_nms_only_lowers_scores_and_sorts_them(seed: int, n: int, method: str, thr: float) -> None:
    boxes, scores, labels = random_boxes(seed, n, 2)
    keep, new_scores = batched_nms(boxes, scores, labels, thr, method, sigma=0.5, min_score=0.05)
    assert len(set(keep.tolist())) == len(keep)
    assert torch.all(new_scores <= scores[keep])
    assert torch.all(new_scores >= 0.05)
    assert torch.all(new_scores[:-1] >= new_scores[1:])
    # The box of the highest score is always kept as it is.
    if n and scores.max() >= 0.05:
        assert int(keep[0]) == int(scores.argmax()) and new_scores[0] == scores.max()
