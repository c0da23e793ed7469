"""Points, level ranges, initial / refine assignment and centerness targets (hand cases)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.model import targets as targets_module
from fsanet_geo.model.boxes import distance_to_boxes, make_points
from fsanet_geo.model.targets import (
    assign_targets,
    fcos_centerness,
    gaussian_centerness,
    level_ranges,
    level_strides,
    refined_centres,
)

STRIDES = (8, 16, 32)
RANGES = ((-1.0, 64.0), (64.0, 128.0), (128.0, math.inf))
K = 3


def test_level_ranges_repeat_each_level_range() -> None:
    ranges = level_ranges([(1, 2), (1, 1)], [(-1, 64), (64, math.inf)])
    assert ranges.tolist() == [[-1, 64], [-1, 64], [64, math.inf]]


def test_a_point_inside_two_boxes_takes_the_smaller() -> None:
    points = torch.tensor([[20.0, 20.0]])
    ranges = torch.tensor([[-1.0, 64.0]])
    big_small = torch.tensor([[0.0, 0.0, 40.0, 40.0], [10.0, 10.0, 30.0, 34.0]])
    for order in ([0, 1], [1, 0]):
        labels, box_targets = assign_targets(
            points, ranges, big_small[order], torch.tensor([0, 1])[order], K
        )
        assert labels.tolist() == [1]
        assert box_targets.tolist() == [[10.0, 10.0, 10.0, 14.0]]


def test_equal_areas_go_to_the_first_box() -> None:
    points = torch.tensor([[20.0, 20.0]])
    ranges = torch.tensor([[-1.0, 64.0]])
    boxes = torch.tensor([[10.0, 10.0, 30.0, 30.0], [15.0, 15.0, 35.0, 35.0]])
    labels, _ = assign_targets(points, ranges, boxes, torch.tensor([2, 1]), K)
    assert labels.tolist() == [2]


@pytest.mark.parametrize(
    ("side", "expected_per_level"),
    [
        (40.0, [25, 0, 0]),  # every interior P3 point has max distance <= 36
        (130.0, [0, 64, 0]),  # max distance in [65, 122]: P4 only
        (300.0, [0, 0, 81]),  # max distance >= 150: P5 only
    ],
)
def test_boxes_land_on_the_level_of_their_size(side: float, expected_per_level: list[int]) -> None:
    sizes = [(40, 40), (20, 20), (10, 10)]
    points = torch.cat(make_points(sizes, STRIDES))
    ranges = level_ranges(sizes, RANGES)
    labels, box_targets = assign_targets(
        points, ranges, torch.tensor([[0.0, 0.0, side, side]]), torch.tensor([1]), K
    )
    per_level = [int((part == 1).sum()) for part in labels.split([h * w for h, w in sizes])]
    assert per_level == expected_per_level
    positive = labels == 1
    assert torch.allclose(
        distance_to_boxes(points[positive], box_targets[positive]),
        torch.tensor([[0.0, 0.0, side, side]]).expand(int(positive.sum()), 4),
    )


def test_range_bounds_are_inclusive_like_mmdet() -> None:
    point = torch.tensor([[64.0, 40.0]])
    box = torch.tensor([[0.0, 20.0, 96.0, 60.0]])  # distances (64, 20, 32, 20): max exactly 64
    results = {}
    for lo, hi in [(-1, 64), (64, 128), (65, 128), (-1, 63.5)]:
        labels, _ = assign_targets(
            point, torch.tensor([[lo, hi]], dtype=torch.float32), box, torch.tensor([0]), K
        )
        results[(lo, hi)] = labels.item()
    assert results == {(-1, 64): 0, (64, 128): 0, (65, 128): K, (-1, 63.5): K}


def test_points_outside_or_on_the_edge_are_background() -> None:
    points = torch.tensor([[50.0, 50.0], [10.0, 15.0], [15.0, 15.0]])
    ranges = torch.tensor([[-1.0, 64.0]]).expand(3, 2)
    box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    labels, box_targets = assign_targets(points, ranges, box, torch.tensor([2]), K)
    assert labels.tolist() == [K, K, 2]  # (10, 15) lies on the left edge: not strictly inside
    assert box_targets[:2].abs().sum() == 0
    assert box_targets[2].tolist() == [5.0, 5.0, 15.0, 15.0]


def test_no_boxes_gives_all_background() -> None:
    points = torch.cat(make_points([(4, 4)], [8]))
    labels, box_targets = assign_targets(
        points,
        level_ranges([(4, 4)], [(-1, 64)]),
        torch.zeros((0, 4)),
        torch.zeros(0, dtype=torch.long),
        K,
    )
    assert labels.tolist() == [K] * 16
    assert box_targets.shape == (16, 4) and box_targets.abs().sum() == 0


def test_refine_labels_by_the_predicted_centre_but_regresses_from_the_point() -> None:
    gt = torch.tensor([[20.0, 20.0, 40.0, 40.0]])
    gt_labels = torch.tensor([1])
    # Point 0 lies outside the GT (x = 12 < 20) but predicts (2, 4, 34, 4): centre (28, 28).
    # Point 1 lies inside the GT but predicts (20, 1, 0, 1): centre (20, 30), on the edge.
    points = torch.tensor([[12.0, 28.0], [30.0, 30.0]])
    ranges = torch.tensor([[-1.0, 64.0], [-1.0, 64.0]])
    pred = torch.tensor([[2.0, 4.0, 34.0, 4.0], [20.0, 1.0, 0.0, 1.0]])
    query = refined_centres(points, pred)
    assert query.tolist() == [[28.0, 28.0], [20.0, 30.0]]

    init_labels, _ = assign_targets(points, ranges, gt, gt_labels, K)
    assert init_labels.tolist() == [K, 1]

    labels, box_targets = assign_targets(points, ranges, gt, gt_labels, K, query=query)
    assert labels.tolist() == [1, K]
    # Distances from the ORIGINAL point (12, 28): the left one is negative; decoding the
    # target around the point still gives the GT box exactly.
    assert box_targets[0].tolist() == [-8.0, 8.0, 28.0, 12.0]
    assert distance_to_boxes(points[:1], box_targets[:1]).tolist() == gt.tolist()
    assert box_targets[1].abs().sum() == 0


def test_refine_range_test_uses_the_query_distances() -> None:
    gt = torch.tensor([[0.0, 0.0, 200.0, 40.0]])
    ranges = torch.tensor([[100.0, 128.0], [100.0, 128.0]])
    points = torch.tensor([[100.0, 20.0], [20.0, 20.0]])  # max distance 100 and 180
    query = torch.tensor([[20.0, 20.0], [100.0, 20.0]])  # swapped
    init_labels, _ = assign_targets(points, ranges, gt, torch.tensor([0]), K)
    assert init_labels.tolist() == [0, K]
    labels, box_targets = assign_targets(points, ranges, gt, torch.tensor([0]), K, query=query)
    assert labels.tolist() == [K, 0]
    assert box_targets[1].tolist() == [20.0, 20.0, 180.0, 20.0]


def _brute_force_assign(points, ranges, boxes, labels, num_classes, query=None):
    probe = points if query is None else query
    out_labels, out_targets = [], []
    for (px, py), (qx, qy), (lo, hi) in zip(
        points.tolist(), probe.tolist(), ranges.tolist(), strict=True
    ):
        best, best_area = None, math.inf
        for m, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            dist = (qx - x1, qy - y1, x2 - qx, y2 - qy)
            area = (x2 - x1) * (y2 - y1)
            if min(dist) > 0 and lo <= max(dist) <= hi and area < best_area:
                best, best_area = m, area
        if best is None:
            out_labels.append(num_classes)
            out_targets.append([0.0, 0.0, 0.0, 0.0])
        else:
            x1, y1, x2, y2 = boxes[best].tolist()
            out_labels.append(int(labels[best]))
            out_targets.append([px - x1, py - y1, x2 - px, y2 - py])
    return out_labels, out_targets


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_boxes=st.integers(0, 6),
    refine=st.booleans(),
    tiny_chunks=st.booleans(),
)
def test_vectorised_assignment_equals_brute_force(
    seed: int, num_boxes: int, refine: bool, tiny_chunks: bool
) -> None:
    gen = torch.Generator().manual_seed(seed)
    sizes = [(6, 6), (3, 3), (2, 2)]
    points = torch.cat(make_points(sizes, STRIDES, dtype=torch.float64))
    ranges = level_ranges(sizes, [(-1, 16), (16, 32), (32, math.inf)], dtype=torch.float64)
    xy = torch.randint(0, 48, (num_boxes, 2), generator=gen).double()
    wh = torch.randint(1, 48, (num_boxes, 2), generator=gen).double()
    boxes = torch.cat([xy, xy + wh], dim=1)
    labels = torch.randint(0, K, (num_boxes,), generator=gen)
    query = points + torch.randint(-8, 9, points.shape, generator=gen).double() if refine else None
    chunk = 5 if tiny_chunks else targets_module._ASSIGN_CHUNK_ELEMENTS
    original = targets_module._ASSIGN_CHUNK_ELEMENTS
    targets_module._ASSIGN_CHUNK_ELEMENTS = chunk
    try:
        got_labels, got_targets = assign_targets(points, ranges, boxes, labels, K, query=query)
    finally:
        targets_module._ASSIGN_CHUNK_ELEMENTS = original
    exp_labels, exp_targets = _brute_force_assign(points, ranges, boxes, labels, K, query)
    assert got_labels.tolist() == exp_labels
    assert got_targets.tolist() == exp_targets


def test_gaussian_centerness_hand_values() -> None:
    box_targets = torch.tensor(
        [
            [5.0, 7.0, 5.0, 7.0],  # the centre
            [1.0, 2.0, 3.0, 2.0],  # |l - r| / 2 / (l + r) = 1/4
            [0.0, 0.0, 4.0, 4.0],  # a corner: 1/2 on both axes
            [-8.0, 8.0, 28.0, 12.0],  # refine target outside the GT: 0.9 and 0.1
        ]
    )
    expected = torch.tensor([1.0, math.exp(-0.25), math.exp(-2.0), math.exp(-3.28)])
    assert torch.allclose(gaussian_centerness(box_targets), expected, rtol=1e-6, atol=0)


def test_fcos_centerness_hand_values() -> None:
    box_targets = torch.tensor([[3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 3.0, 2.0], [2.0, 1.0, 2.0, 4.0]])
    expected = torch.tensor([1.0, math.sqrt(1 / 3), 0.5])
    assert torch.allclose(fcos_centerness(box_targets), expected)
    assert fcos_centerness(torch.zeros((0, 4))).shape == (0,)


# ---------------------------------------------------------------- nearest-point fallback
TINY_STRIDES = (4, 8)
TINY_RANGES = ((-1.0, 32.0), (32.0, math.inf))


def _tiny_grid(size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sizes = [(size // s, size // s) for s in TINY_STRIDES]
    points = torch.cat(make_points(sizes, TINY_STRIDES))
    return points, level_ranges(sizes, TINY_RANGES), level_strides(sizes, TINY_STRIDES)


def test_level_strides_repeat_each_levels_stride() -> None:
    assert level_strides([(1, 2), (1, 1)], [4, 8]).tolist() == [4.0, 4.0, 8.0]


def test_a_2px_box_between_points_gets_the_nearest_point_only_with_the_fallback() -> None:
    points, ranges, strides = _tiny_grid()
    # Stride-4 points sit at 2, 6, 10, ...: the box (11, 11)-(13, 13) holds none of them;
    # the nearest point to its centre (12, 12) is (10, 10), ..., all at the same distance:
    # the lowest point index wins, (10, 10).
    box = torch.tensor([[11.0, 11.0, 13.0, 13.0]])
    plain, _ = assign_targets(points, ranges, box, torch.tensor([1]), K)
    assert (plain < K).sum() == 0
    labels, box_targets = assign_targets(
        points, ranges, box, torch.tensor([1]), K, point_strides=strides
    )
    positive = (labels < K).nonzero(as_tuple=True)[0]
    assert positive.tolist() == [2 * 8 + 2]  # row 2, column 2 of the 8x8 stride-4 level
    assert points[positive].tolist() == [[10.0, 10.0]]
    assert box_targets[positive].tolist() == [[-1.0, -1.0, 3.0, 3.0]]
    assert distance_to_boxes(points[positive], box_targets[positive]).tolist() == box.tolist()


def test_fallback_leaves_boxes_with_a_regular_positive_alone() -> None:
    points, ranges, strides = _tiny_grid()
    boxes = torch.tensor([[1.0, 1.0, 7.0, 7.0], [17.0, 17.0, 20.0, 20.0]])
    plain = assign_targets(points, ranges, boxes, torch.tensor([0, 2]), K)
    fallback = assign_targets(points, ranges, boxes, torch.tensor([0, 2]), K, point_strides=strides)
    assert torch.equal(plain[0], fallback[0]) and torch.equal(plain[1], fallback[1])


def test_two_tiny_boxes_wanting_one_point_both_get_one() -> None:
    points, ranges, strides = _tiny_grid()
    # Both boxes are centred on (12, 12), equally near (10, 10), (14, 10), (10, 14) and
    # (14, 14). The smaller box wins the first of them, (10, 10), in round one; the larger
    # takes the next free one in point order, (14, 10), in round two.
    boxes = torch.tensor([[10.5, 10.5, 13.5, 13.5], [11.0, 11.0, 13.0, 13.0]])
    labels, box_targets = assign_targets(
        points, ranges, boxes, torch.tensor([0, 1]), K, point_strides=strides
    )
    positive = (labels < K).nonzero(as_tuple=True)[0]
    assert points[positive].tolist() == [[10.0, 10.0], [14.0, 10.0]]
    assert labels[positive].tolist() == [1, 0]
    decoded = distance_to_boxes(points[positive], box_targets[positive])
    assert decoded.tolist() == [boxes[1].tolist(), boxes[0].tolist()]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 60), st.integers(0, 60), st.integers(2, 30), st.integers(2, 30)
        ),
        min_size=1,
        max_size=12,
    )
)
def test_fallback_gives_every_separate_box_exactly_its_own_target(
    raw: list[tuple[int, int, int, int]],
) -> None:
    """Boxes 2-30 px anywhere on a 64 px image: each GT decodes from at least one positive,
    and every positive decodes exactly to some GT box; a GT may go without when its
    neighbours take every point near its centre, so only isolated GTs are checked."""
    points, ranges, strides = _tiny_grid(64)
    boxes = torch.tensor([[x, y, min(x + w, 64), min(y + h, 64)] for x, y, w, h in raw],
                         dtype=torch.float32)
    boxes = boxes[(boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)]
    if boxes.shape[0] == 0:
        return
    labels_in = torch.arange(boxes.shape[0]) % K
    labels, box_targets = assign_targets(points, ranges, boxes, labels_in, K, point_strides=strides)
    positive = labels < K
    decoded = distance_to_boxes(points[positive], box_targets[positive])
    gt_set = set(map(tuple, boxes.tolist()))
    assert set(map(tuple, decoded.tolist())) <= gt_set
    # A box is isolated when no other box, grown by one stride (4 px: its own fallback
    # reach), touches the square of one stride around this box's centre (its candidates).
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2

    def apart(i: int, j: int) -> bool:
        lo, hi = centres[i] - 4, centres[i] + 4
        return bool((boxes[j, :2] - 4 > hi).any() or (boxes[j, 2:] + 4 < lo).any())

    isolated = [
        i for i in range(boxes.shape[0])
        if all(apart(i, j) for j in range(boxes.shape[0]) if j != i)
    ]
    found = set(map(tuple, decoded.tolist()))
    for i in isolated:
        assert tuple(boxes[i].tolist()) in found
    # A fallback target reaches at most one stride beyond its box.
    assert box_targets[positive].min() >= -4.0
