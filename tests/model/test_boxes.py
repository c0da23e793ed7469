"""Point grids and the (l, t, r, b) box encoding (moved here with model/boxes.py)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.model.boxes import boxes_to_distances, distance_to_boxes, make_points


def test_points_of_a_2x3_level_at_stride_8() -> None:
    (points,) = make_points([(2, 3)], [8])
    expected = torch.tensor(
        [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]], dtype=torch.float32
    )
    assert torch.equal(points, expected)


def test_points_follow_flatten_order_of_a_feature_map() -> None:
    sizes = [(3, 5), (2, 2)]
    points = make_points(sizes, [8, 16], dtype=torch.float64)
    for (h, w), stride, pts in zip(sizes, [8, 16], points, strict=True):
        xs = torch.arange(w, dtype=torch.float64)[None, None, None, :].expand(1, 1, h, w)
        ys = torch.arange(h, dtype=torch.float64)[None, None, :, None].expand(1, 1, h, w)
        grid = torch.cat([xs, ys], dim=1).flatten(2)[0].t()  # [HW, 2]
        assert torch.equal(pts, (grid + 0.5) * stride)
        assert pts.dtype == torch.float64


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.floats(-1000, 1000, allow_nan=False) for _ in range(6)]),
        min_size=1,
        max_size=8,
    )
)
def test_box_distance_round_trip(rows: list[tuple[float, ...]]) -> None:
    data = torch.tensor(rows, dtype=torch.float64)
    points, boxes = data[:, :2], data[:, 2:]
    dist = boxes_to_distances(points, boxes)
    assert torch.allclose(distance_to_boxes(points, dist), boxes, atol=1e-9)


def test_distances_are_signed_and_decode_unclipped() -> None:
    points = torch.tensor([[5.0, 5.0], [20.0, 5.0]])
    boxes = torch.tensor([[0.0, 2.0, 10.0, 12.0], [0.0, 2.0, 10.0, 12.0]])
    dist = boxes_to_distances(points, boxes)
    assert dist.tolist() == [[5.0, 3.0, 5.0, 7.0], [20.0, 3.0, -10.0, 7.0]]  # second: beyond x2
    assert distance_to_boxes(points, dist).tolist() == boxes.tolist()


def test_points_need_one_stride_per_level() -> None:
    with pytest.raises(ValueError, match="strides"):
        make_points([(2, 2), (1, 1)], [8])
