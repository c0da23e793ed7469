"""IoU / IoS kernels (fsanet_geo.ops.overlap): hand cases, invariants, torchvision, numpy = torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_cases import random_numpy_boxes
from torchvision.ops import box_iou

from fsanet_geo.ops.overlap import box_overlap, pairwise_overlap

A = [0.0, 0.0, 10.0, 10.0]  # area 100
B = [0.0, 0.0, 10.0, 6.0]  # area 60, inside A
C = [5.0, 5.0, 15.0, 15.0]  # area 100, intersection with A 25
EMPTY = [3.0, 3.0, 3.0, 8.0]  # zero width


@pytest.mark.parametrize(
    ("a", "b", "iou", "ios"),
    [
        (A, B, 0.6, 1.0),
        (A, C, 25 / 175, 0.25),
        (A, [20.0, 20.0, 30.0, 30.0], 0.0, 0.0),
        (A, [10.0, 0.0, 20.0, 10.0], 0.0, 0.0),  # touching edges
        (A, A, 1.0, 1.0),
        (A, EMPTY, 0.0, 0.0),  # IoS denominator 0: defined as 0
        (EMPTY, EMPTY, 0.0, 0.0),  # IoU denominator 0 too
    ],
)
def test_hand_cases_in_numpy_and_torch(a: list, b: list, iou: float, ios: float) -> None:
    for metric, expected in (("iou", iou), ("ios", ios)):
        assert box_overlap(np.array(a), np.array(b), metric) == pytest.approx(expected)
        assert box_overlap(torch.tensor(a), torch.tensor(b), metric).item() == pytest.approx(expected)


def test_default_metric_is_iou_and_result_type_follows_the_input() -> None:
    assert box_overlap(np.array(A), np.array(B)) == pytest.approx(0.6)
    out = box_overlap(torch.tensor([A], dtype=torch.float32), torch.tensor([B], dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (1,)
    assert isinstance(box_overlap(np.array([A]), np.array([B])), np.ndarray)


def test_element_wise_broadcasting_and_pairwise_shapes() -> None:
    a = np.array([A, C])
    assert box_overlap(a, np.array(B)).tolist() == pytest.approx([0.6, 5 * 1 / 155])
    assert pairwise_overlap(a, np.array([A, B, C])).shape == (2, 3)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 40))
def test_invariants(seed: int, n: int, m: int) -> None:
    """Symmetric, in [0, 1], IoS >= IoU, 1 on the diagonal of boxes with area."""
    rng = np.random.default_rng(seed)
    a, b = random_numpy_boxes(rng, n), random_numpy_boxes(rng, m)
    iou, ios = pairwise_overlap(a, b, "iou"), pairwise_overlap(a, b, "ios")
    np.testing.assert_array_equal(iou, pairwise_overlap(b, a, "iou").T)
    np.testing.assert_array_equal(ios, pairwise_overlap(b, a, "ios").T)
    assert np.all((iou >= 0) & (iou <= 1) & (ios >= 0) & (ios <= 1))
    assert np.all(ios >= iou)
    has_area = (a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1])
    np.testing.assert_array_equal(np.diag(pairwise_overlap(a, a, "iou"))[has_area], 1.0)
    np.testing.assert_array_equal(box_overlap(a[:, None], b[None], "ios"), ios)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(1, 40))
def test_iou_is_torchvision_box_iou_bit_for_bit_and_numpy_equals_torch(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_numpy_boxes(rng, n) + rng.uniform(0, 1, (n, 4)) * [0, 0, 1, 1]  # non-integer, area > 0
    b = random_numpy_boxes(rng, m) + rng.uniform(0, 1, (m, 4)) * [0, 0, 1, 1]
    a[:, 2:] += 0.5
    b[:, 2:] += 0.5
    for dtype in (torch.float32, torch.float64):
        ta, tb = torch.tensor(a, dtype=dtype), torch.tensor(b, dtype=dtype)
        assert torch.equal(pairwise_overlap(ta, tb, "iou"), box_iou(ta, tb))
    for metric in ("iou", "ios"):
        np.testing.assert_array_equal(
            pairwise_overlap(a, b, metric), pairwise_overlap(torch.tensor(a), torch.tensor(b), metric).numpy()
        )
