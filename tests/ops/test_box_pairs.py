"""The two pair finders: overlapping pairs within one set (torch sweep) and intersecting
pairs between two sets (numpy grid hash), each against all pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_cases import random_boxes, random_numpy_boxes

from fsanet_geo.ops.grid_pairs import intersecting_pairs_between
from fsanet_geo.ops.overlap import pairwise_overlap
from fsanet_geo.ops.sweep_pairs import overlap_pairs_within


def test_boxes_that_only_touch_are_no_pair() -> None:
    a = [[0.0, 0.0, 10.0, 10.0]]
    b = [[10.0, 0.0, 20.0, 10.0], [9.0, 9.0, 12.0, 12.0]]  # shares an edge; overlaps 1 px^2
    ia, ib = intersecting_pairs_between(np.array(a), np.array(b))
    assert list(zip(ia.tolist(), ib.tolist())) == [(0, 1)]
    first, second, iou = overlap_pairs_within(torch.tensor(a + b), 0.0)
    found = {frozenset(p): v for p, v in zip(zip(first.tolist(), second.tolist()), iou.tolist())}
    assert found == {frozenset((0, 2)): pytest.approx(1 / 108), frozenset((1, 2)): pytest.approx(2 / 107)}


def test_pairs_within_never_cross_groups_and_use_the_chosen_metric() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 4.0], [0.0, 0.0, 10.0, 4.0]])
    first, second, overlap = overlap_pairs_within(boxes, 0.5, torch.tensor([0, 0, 1]), metric="ios")
    assert (first.tolist(), second.tolist(), overlap.tolist()) == ([0], [1], [1.0])
    assert len(overlap_pairs_within(boxes, 0.5, torch.tensor([0, 0, 1]))[0]) == 0  # IoU 0.4


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(0, 30),
    classes=st.integers(1, 3),
    min_overlap=st.sampled_from([0.0, 0.3]),
    metric=st.sampled_from(["iou", "ios"]),
    tiny_chunks=st.booleans(),
)
def test_overlap_pairs_within_equal_all_pairs(
    seed: int, n: int, classes: int, min_overlap: float, metric: str, tiny_chunks: bool
) -> None:
    boxes, _, labels = random_boxes(seed, n, classes)
    first, second, overlap = overlap_pairs_within(
        boxes, min_overlap, labels, metric=metric, max_pairs_per_chunk=3 if tiny_chunks else 1 << 22
    )
    found = {
        frozenset((a, b)): v
        for a, b, v in zip(first.tolist(), second.tolist(), overlap.tolist(), strict=True)
    }
    assert len(found) == len(first)  # each unordered pair once
    full = pairwise_overlap(boxes, boxes, metric)
    expected = {
        frozenset((i, j)): full[i, j].item()
        for i in range(n)
        for j in range(i + 1, n)
        if labels[i] == labels[j] and full[i, j] > min_overlap
    }
    assert found.keys() == expected.keys()
    for pair, value in expected.items():
        assert found[pair] == value


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.integers(1, 60))
def test_intersecting_pairs_between_equal_all_pairs(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = random_numpy_boxes(rng, n), random_numpy_boxes(rng, m)
    ia, ib = intersecting_pairs_between(a, b)
    inter = pairwise_overlap(a, b, "iou") > 0
    assert sorted(zip(ia.tolist(), ib.tolist())) == sorted(zip(*map(list, np.nonzero(inter))))


def test_intersecting_pairs_of_an_empty_set() -> None:
    ia, ib = intersecting_pairs_between(np.zeros((0, 4)), np.array([[0.0, 0.0, 1.0, 1.0]]))
    assert ia.shape == ib.shape == (0,) and ia.dtype == np.int64
