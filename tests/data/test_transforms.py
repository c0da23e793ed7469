"""Transforms keep boxes on their pixels: paint a box, transform, compare extents."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.data.transforms import DetectionTransform, hflip, resize_longer_side, rot90, vflip


def painted(h: int, w: int, box: tuple[int, int, int, int], channels: int = 1) -> torch.Tensor:
    """An image [C, H, W] that is 255 exactly on the box's pixels (xyxy pixel edges)."""
    image = torch.zeros(channels, h, w)
    x1, y1, x2, y2 = box
    image[:, y1:y2, x1:x2] = 255.0
    return image


def extent(image: torch.Tensor, threshold: float = 127.5) -> list[float]:
    """xyxy pixel-edge extent of the pixels above ``threshold`` (any channel)."""
    mask = (image > threshold).any(0)
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]


@st.composite
def image_and_box(draw: st.DrawFn, max_side: int = 40, min_box: int = 1) -> tuple[int, int, tuple[int, int, int, int]]:
    h = draw(st.integers(min_box, max_side))
    w = draw(st.integers(min_box, max_side))
    x1 = draw(st.integers(0, w - min_box))
    y1 = draw(st.integers(0, h - min_box))
    x2 = draw(st.integers(x1 + min_box, w))
    y2 = draw(st.integers(y1 + min_box, h))
    return h, w, (x1, y1, x2, y2)


@settings(max_examples=60, deadline=None)
@given(case=image_and_box(), k=st.integers(0, 7))
def test_flips_and_rotations_keep_boxes_on_their_pixels(case: tuple, k: int) -> None:
    h, w, box = case
    image = painted(h, w, box, channels=2)
    boxes = torch.tensor([box], dtype=torch.float32)
    for fn in (hflip, vflip, lambda i, b: rot90(i, b, k)):
        out_image, out_boxes = fn(image, boxes)
        assert out_boxes[0].tolist() == extent(out_image)
    # the input is never mutated
    assert torch.equal(image, painted(h, w, box, channels=2))
    assert boxes[0].tolist() == list(map(float, box))


@settings(max_examples=40, deadline=None)
@given(case=image_and_box())
def test_round_trips_are_identities(case: tuple) -> None:
    h, w, box = case
    image = torch.rand(3, h, w) * 255
    boxes = torch.tensor([box, (0, 0, w, h)], dtype=torch.float32)
    for fn in (hflip, vflip):
        i2, b2 = fn(*fn(image, boxes))
        assert torch.equal(i2, image) and torch.equal(b2, boxes)
    i4, b4 = image, boxes
    for _ in range(4):
        i4, b4 = rot90(i4, b4, 1)
    assert torch.equal(i4, image) and torch.equal(b4, boxes)
    for k in range(4):
        ik, bk = rot90(*rot90(image, boxes, k), 4 - k)
        assert torch.equal(ik, image) and torch.equal(bk, boxes)


def test_rot90_known_case() -> None:
    # 4 rows x 6 cols, box on cols 1..2, rows 0..0 -> one CCW turn: rows 6-3..6-1, cols 0..0
    image = painted(4, 6, (1, 0, 3, 1))
    out_image, out_boxes = rot90(image, torch.tensor([[1.0, 0.0, 3.0, 1.0]]), 1)
    assert out_image.shape == (1, 6, 4)
    assert out_boxes.tolist() == [[0.0, 3.0, 1.0, 5.0]]
    assert extent(out_image) == [0.0, 3.0, 1.0, 5.0]


@settings(max_examples=40, deadline=None)
@given(case=image_and_box(max_side=60, min_box=4), size=st.integers(32, 128))
def test_resize_keeps_boxes_within_a_pixel(case: tuple, size: int) -> None:
    h, w, box = case
    image = painted(h, w, box)
    out_image, out_boxes, scale = resize_longer_side(image, torch.tensor([box], dtype=torch.float32), size)
    assert max(out_image.shape[1:]) == size
    assert scale == size / max(h, w)
    got = extent(out_image)
    for a, b in zip(out_boxes[0].tolist(), got):
        assert abs(a - b) <= 1.0, (out_boxes, got)


def test_resize_rule_longer_side() -> None:
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    image, out, scale = resize_longer_side(torch.zeros(3, 500, 1000), boxes, 800)
    assert image.shape == (3, 400, 800) and scale == 0.8
    assert out.tolist() == [[8.0, 16.0, 24.0, 32.0]]
    same = torch.zeros(3, 800, 800)
    image, out, scale = resize_longer_side(same, boxes, 800)
    assert image is same and scale == 1.0 and torch.equal(out, boxes)
    image, out, scale = resize_longer_side(torch.zeros(3, 50, 100), boxes, 800)
    assert image.shape == (3, 400, 800) and scale == 8.0
    assert out.tolist() == [[80.0, 160.0, 240.0, 320.0]]


def test_detection_transform_is_seeded_and_applies_its_probabilities() -> None:
    image = torch.rand(3, 30, 20) * 255
    boxes = torch.tensor([[1.0, 2.0, 5.0, 9.0]])
    t = DetectionTransform(input_size=30, flip_h=0.5, flip_v=0.5, rot90=True)
    a = t(image, boxes, torch.Generator().manual_seed(7))
    b = t(image, boxes, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    shapes = {tuple(t(image, boxes, torch.Generator().manual_seed(s))[0].shape) for s in range(20)}
    assert shapes == {(3, 30, 20), (3, 20, 30)}  # quarter turns happen
    always = DetectionTransform(input_size=30, flip_h=1.0)
    out_image, out_boxes, _ = always(image, boxes)
    assert torch.equal(out_image, image.flip(-1))
    assert out_boxes.tolist() == [[15.0, 2.0, 19.0, 9.0]]
    never = DetectionTransform.eval(30)
    out_image, out_boxes, scale = never(image, boxes)
    assert torch.equal(out_image, image) and torch.equal(out_boxes, boxes) and scale == 1.0
