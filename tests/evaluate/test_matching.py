"""Greedy COCO-style matching of one class: best score first, each truth box once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.evaluate.matching import match_boxes, match_pairs


def test_match_boxes_is_greedy_by_score() -> None:
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    dt = np.array([[0, 0, 10, 9], [0, 0, 10, 10], [21, 0, 31, 10], [100, 100, 110, 110]], float)
    scores = np.array([0.9, 0.5, 0.7, 0.8])
    # the best-scored detection takes the first box even though the second fits it better
    assert match_boxes(dt, scores, gt, 0.5).tolist() == [True, False, True, False]
    assert match_boxes(dt, scores, gt, 0.95).tolist() == [False, True, False, False]
    assert match_boxes(dt[:0], scores[:0], gt, 0.5).tolist() == []
    assert match_pairs(dt, scores, gt, 0.5).tolist() == [0, -1, 1, -1]
    assert match_pairs(dt, scores, gt, 0.95).tolist() == [-1, 0, -1, -1]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 30), st.integers(0, 30))
def test_match_boxes_properties(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (m, 2))
    gt = np.concatenate([xy, xy + rng.uniform(1, 20, (m, 2))], axis=1)
    xy = rng.uniform(0, 100, (n, 2))
    dt = np.concatenate([xy, xy + rng.uniform(1, 20, (n, 2))], axis=1)
    scores = rng.random(n)
    matched = match_boxes(dt, scores, gt, 0.3)
    assert matched.sum() <= min(n, m)
    # a detection identical to every truth box matches them all
    assert match_boxes(gt, rng.random(m), gt, 1.0).all()
    # every matched detection overlaps some truth box by at least the threshold
    for d in np.flatnonzero(matched):
        ix = np.clip(np.minimum(dt[d, 2], gt[:, 2]) - np.maximum(dt[d, 0], gt[:, 0]), 0, None)
        iy = np.clip(np.minimum(dt[d, 3], gt[:, 3]) - np.maximum(dt[d, 1], gt[:, 1]), 0, None)
        inter = ix * iy
        union = (dt[d, 2] - dt[d, 0]) * (dt[d, 3] - dt[d, 1]) + (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]) - inter
        assert (inter / union).max() >= 0.3
