"""Hard / soft NMS and the post-processor on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_targets import make_outputs
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_iou

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import postprocess as postprocess_module
from fsanet_geo.model.postprocess import PostProcessor, batched_nms, overlapping_pairs, soft_nms
from fsanet_geo.model.targets import make_points

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
    with pytest.raises(ConfigError):
        PostProcessor(nms="soft")


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


def _random_boxes(seed: int, n: int, classes: int):
    gen = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 40, (n, 2), generator=gen).double()
    wh = torch.randint(1, 20, (n, 2), generator=gen).double()
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = (torch.randperm(n, generator=gen).double() + 1) / (n + 1)  # distinct
    labels = torch.randint(0, classes, (n,), generator=gen)
    return boxes, scores, labels


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 40),
    classes=st.integers(1, 3),
    thr=st.sampled_from([0.1, 0.3, 0.5, 0.7]),
)
def test_hard_nms_equals_brute_force(seed: int, n: int, classes: int, thr: float) -> None:
    boxes, scores, labels = _random_boxes(seed, n, classes)
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
    boxes, scores, labels = _random_boxes(seed, n, classes)
    keep, new_scores = batched_nms(boxes, scores, labels, 0.3, method, sigma=0.5, min_score=0.05)
    expected = _brute_force_soft_nms(boxes, scores, labels.tolist(), 0.3, method, 0.5, 0.05)
    assert torch.allclose(new_scores, torch.tensor([s for _, s in expected], dtype=torch.float64))
    assert set(keep.tolist()) == {i for i, _ in expected}
    assert torch.all(new_scores[:-1] >= new_scores[1:])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 30),
    classes=st.integers(1, 3),
    min_iou=st.sampled_from([0.0, 0.3]),
    tiny_chunks=st.booleans(),
)
def test_overlapping_pairs_equal_brute_force(
    seed: int, n: int, classes: int, min_iou: float, tiny_chunks: bool
) -> None:
    boxes, _, labels = _random_boxes(seed, n, classes)
    original = postprocess_module._PAIR_CHUNK
    postprocess_module._PAIR_CHUNK = 3 if tiny_chunks else original
    try:
        first, second, iou = overlapping_pairs(boxes, min_iou, labels)
    finally:
        postprocess_module._PAIR_CHUNK = original
    found = {
        frozenset((a, b)): v
        for a, b, v in zip(first.tolist(), second.tolist(), iou.tolist(), strict=True)
    }
    assert len(found) == len(first)  # each unordered pair once
    full = box_iou(boxes, boxes)
    expected = {
        frozenset((i, j)): full[i, j].item()
        for i in range(n)
        for j in range(i + 1, n)
        if labels[i] == labels[j] and full[i, j] > min_iou
    }
    assert found.keys() == expected.keys()
    for pair, value in expected.items():
        assert found[pair] == pytest.approx(value, rel=1e-12)


def test_single_class_soft_nms_keeps_pick_order() -> None:
    keep, scores = soft_nms(torch.tensor([A, B, C]), torch.tensor([0.9, 0.8, 0.5]), 0.5, "linear")
    assert keep.tolist() == [0, 2, 1]
    assert torch.allclose(scores, torch.tensor([0.9, 0.5, 0.32]))


# Post-processing: one 2x2 level at stride 8 (points (4, 4), (12, 4), (4, 12), (12, 12)), K = 2.
SIZES = [(2, 2)]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _outputs(batch: int = 1, point0_box: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0)):
    cls = torch.full((batch, 4, 2), -10.0)
    cls[:, 0, 1] = _logit(0.9)  # point 0, class 1
    cls[:, 3, 0] = _logit(0.6)  # point 3, class 0
    cls[:, 3, 1] = _logit(0.04)  # below score_thr 0.05
    box = torch.tensor([list(point0_box), [1, 1, 1, 1], [1, 1, 1, 1], [20.0, 1.0, 3.0, 2.0]])
    ctr = torch.tensor([_logit(0.7), 0.0, 0.0, _logit(0.8)])
    return make_outputs(SIZES, cls, box.expand(batch, 4, 4), ctr.expand(batch, 4))


def test_postprocess_scores_decoding_and_clipping_per_image() -> None:
    points = make_points(SIZES, [8])
    results = PostProcessor(score_thr=0.05)(_outputs(batch=2), points, [(20, 20), (6, 13)])
    first, second = results
    assert first["labels"].tolist() == [1, 0]
    assert first["labels"].dtype == torch.int64
    assert first["scores"].tolist() == pytest.approx([0.9 * 0.7, 0.6 * 0.8], rel=1e-5)
    # Point 0 (4, 4) with (2, 3, 4, 5) -> (2, 1, 8, 9); point 3 (12, 12) with (20, 1, 3, 2)
    # -> (-8, 11, 15, 14), clipped to x >= 0 in a 20 x 20 image.
    assert first["boxes"].tolist() == [[2.0, 1.0, 8.0, 9.0], [0.0, 11.0, 15.0, 14.0]]
    # Image of H = 6, W = 13: point 3's box lies below the image, clipped to zero height,
    # so it is dropped (no object has no height).
    assert second["boxes"].tolist() == [[2.0, 1.0, 8.0, 6.0]]
    assert second["labels"].tolist() == [1]


def test_postprocess_drops_inverted_boxes() -> None:
    """Refined distances are signed: point 0 (4, 4) with (-3, 1, 1, 1) decodes to x1 = 7 >
    x2 = 5, an inverted box that must not reach NMS or the output."""
    outputs = _outputs(point0_box=(-3.0, 1.0, 1.0, 1.0))
    (result,) = PostProcessor(score_thr=0.05)(outputs, make_points(SIZES, [8]), [(20, 20)])
    assert result["boxes"].tolist() == [[0.0, 11.0, 15.0, 14.0]]
    assert result["labels"].tolist() == [0]


def test_postprocess_without_centerness_and_with_soft_nms() -> None:
    points = make_points(SIZES, [8])
    (result,) = PostProcessor(use_centerness=False, nms="linear")(_outputs(), points, [(20, 20)])
    assert result["scores"].tolist() == pytest.approx([0.9, 0.6], rel=1e-5)


def test_postprocess_caps_nms_pre_per_level_and_max_per_img() -> None:
    sizes = [(3, 3), (2, 2)]
    points = make_points(sizes, [8, 16])
    n = 13
    probs = torch.linspace(0.1, 0.9, n)  # distinct, all above score_thr
    cls = torch.log(probs / (1 - probs))[None, :, None]
    box = torch.full((1, n, 4), 2.0)  # small boxes: no two overlap
    ctr = torch.full((1, n), 50.0)  # sigmoid = 1
    outputs = make_outputs(sizes, cls, box, ctr)
    (result,) = PostProcessor(nms_pre=2, max_per_img=100)(outputs, points, [(64, 64)])
    # Top 2 of level 0 (points 7, 8) and of level 1 (points 11, 12).
    assert result["scores"].tolist() == pytest.approx(probs[[12, 11, 8, 7]].tolist(), rel=1e-5)
    (result,) = PostProcessor(nms_pre=100, max_per_img=3)(outputs, points, [(64, 64)])
    assert result["scores"].tolist() == pytest.approx(probs[[12, 11, 10]].tolist(), rel=1e-5)


def test_postprocess_hard_nms_merges_across_levels() -> None:
    sizes = [(1, 1), (1, 1)]
    points = make_points(sizes, [8, 16])  # (4, 4) and (8, 8)
    cls = torch.tensor([[[_logit(0.7)], [_logit(0.8)]]])
    box = torch.tensor([[[4.0, 4.0, 6.0, 6.0], [8.0, 8.0, 2.0, 2.0]]])  # both (0, 0, 10, 10)
    outputs = make_outputs(sizes, cls, box, torch.full((1, 2), 50.0))
    (result,) = PostProcessor()(outputs, points, [(32, 32)])
    assert result["scores"].tolist() == pytest.approx([0.8], rel=1e-5)
    assert result["boxes"].tolist() == [[0.0, 0.0, 10.0, 10.0]]


def test_postprocess_with_nothing_above_threshold() -> None:
    points = make_points(SIZES, [8])
    (result,) = PostProcessor(score_thr=0.95)(_outputs(), points, [(20, 20)])
    assert result["boxes"].shape == (0, 4)
    assert result["scores"].shape == (0,) and result["labels"].shape == (0,)


def test_soft_nms_tie_goes_to_the_lower_index() -> None:
    keep, scores = _nms([C, A, A], [0.5, 0.5, 0.5], [0, 0, 0], "gaussian")
    assert keep.tolist() == [0, 1, 2]
    assert torch.allclose(scores, torch.tensor([0.5, 0.5, 0.5 * math.exp(-1 / 0.5)]))
    keep, scores = _nms([A, A], [0.5, 0.5], [0, 0], "linear")
    assert keep.tolist() == [0]  # IoU 1: decayed to 0, below min_score


def test_nms_pre_keeps_the_best_final_scores_not_the_best_class_scores() -> None:
    """Point 0 has the highest class score but a low centerness; point 3 the reverse.
    With room for one pair, the pair of the higher final score (point 3) survives."""
    points = make_points(SIZES, [8])
    cls = torch.full((1, 4, 1), -10.0)
    cls[0, 0, 0] = _logit(0.9)
    cls[0, 3, 0] = _logit(0.6)
    box = torch.full((1, 4, 4), 2.0)
    ctr = torch.tensor([[_logit(0.1), 0.0, 0.0, _logit(0.9)]])
    outputs = make_outputs(SIZES, cls, box, ctr)
    (result,) = PostProcessor(nms_pre=1)(outputs, points, [(16, 16)])
    assert result["scores"].tolist() == pytest.approx([0.6 * 0.9], rel=1e-5)
    assert result["boxes"].tolist() == [[10.0, 10.0, 14.0, 14.0]]
    (both,) = PostProcessor(nms_pre=2)(outputs, points, [(16, 16)])
    assert both["scores"].tolist() == pytest.approx([0.6 * 0.9, 0.9 * 0.1], rel=1e-5)
