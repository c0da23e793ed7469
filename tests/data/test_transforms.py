"""Transforms keep boxes on their pixels: paint a box, transform, compare extents."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.data.transforms import (
    MIN_VISIBLE,
    DetectionTransform,
    hflip,
    random_crop,
    resize_longer_side,
    rot90,
    vflip,
)


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
    t = DetectionTransform(crop_size=30, flip_h=0.5, flip_v=0.5, rot90=True)
    a = t(image, boxes, torch.Generator().manual_seed(7))
    b = t(image, boxes, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    shapes = {tuple(t(image, boxes, torch.Generator().manual_seed(s))[0].shape) for s in range(20)}
    assert shapes == {(3, 30, 20), (3, 20, 30)}  # quarter turns happen
    always = DetectionTransform(crop_size=30, flip_h=1.0)
    out_image, out_boxes, keep, _ = always(image, boxes)
    assert torch.equal(out_image, image.flip(-1))
    assert out_boxes.tolist() == [[15.0, 2.0, 19.0, 9.0]]
    never = DetectionTransform.eval()
    out_image, out_boxes, keep, scale = never(image, boxes)
    assert torch.equal(out_image, image) and torch.equal(out_boxes, boxes) and scale == 1.0


def test_crop_keeps_native_scale_and_applies_the_cut_box_rule() -> None:
    # 100 x 60 px image, 40 px crops: the offset is drawn, pixels are copied, never scaled.
    image = torch.arange(3 * 60 * 100, dtype=torch.float32).reshape(3, 60, 100)
    boxes = torch.tensor([[0.0, 0.0, 100.0, 60.0], [10.0, 10.0, 14.0, 14.0], [50.0, 20.0, 54.0, 24.0]])
    gen = torch.Generator().manual_seed(3)
    row = int(torch.randint(0, 60 - 40 + 1, (), generator=torch.Generator().manual_seed(3)).item())
    out, kept, keep = random_crop(image, boxes, 40, gen)
    assert out.shape == (3, 40, 40)
    col = int(out[0, 0, 0].item()) % 100
    assert row == int(out[0, 0, 0].item()) // 100
    assert torch.equal(out, image[:, row : row + 40, col : col + 40])
    # the whole-image box is cut to the crop but keeps less than half its area: dropped
    assert not keep[0]
    # every kept box is the input box moved by the offset and clipped to the crop
    for box, k in zip(boxes[1:], keep[1:]):
        moved = box - torch.tensor([col, row, col, row])
        clipped = moved.clamp(min=0).minimum(torch.tensor([40.0, 40, 40, 40]))
        w, h = clipped[2] - clipped[0], clipped[3] - clipped[1]
        visible = float(w.clamp(min=0) * h.clamp(min=0)) / 16.0
        assert bool(k) == (w >= 1 and h >= 1 and visible >= MIN_VISIBLE)
    assert kept.tolist() == [
        (b - torch.tensor([col, row, col, row])).clamp(min=0).minimum(torch.tensor([40.0, 40, 40, 40])).tolist()
        for b, k in zip(boxes, keep) if k
    ]


def test_crop_of_a_smaller_image_keeps_it_whole_and_draws_nothing() -> None:
    image = torch.rand(3, 30, 50) * 255
    boxes = torch.tensor([[1.0, 2.0, 5.0, 9.0]])
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    out, kept, keep = random_crop(image, boxes, 64, gen)
    assert out is image and torch.equal(kept, boxes) and keep.tolist() == [True]
    assert torch.equal(gen.get_state(), state)  # no number drawn: AI-TOD 800 on 800 is as before
    # a 30 x 100 image with 64 px crops: rows kept whole (not enlarged), columns cropped
    out, _, _ = random_crop(torch.rand(3, 30, 100), boxes, 64, gen)
    assert out.shape == (3, 30, 64)


def test_half_visible_boxes_are_kept_exactly_at_the_limit() -> None:
    image = torch.zeros(1, 10, 20)
    # a 10 px crop of a 10 x 20 image: find a seed whose column offset is 5
    boxes = torch.tensor([[3.0, 0.0, 7.0, 2.0], [4.0, 0.0, 7.0, 2.0]])
    for seed in range(100):
        gen = torch.Generator().manual_seed(seed)
        if int(torch.randint(0, 11, (), generator=torch.Generator().manual_seed(seed)).item()) == 5:
            break
    out, kept, keep = random_crop(image, boxes, 10, gen)
    # box 0 (cols 3..7) keeps 2 of 4 columns: exactly half, kept; box 1 keeps 2 of 3: kept too
    assert keep.tolist() == [True, True] and kept.tolist() == [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]]
    box = torch.tensor([[2.0, 0.0, 7.0, 2.0]])  # keeps 2 of 5 columns: dropped
    gen = torch.Generator().manual_seed(seed)
    _, kept, keep = random_crop(image, box, 10, gen)
    assert keep.tolist() == [False] and kept.shape == (0, 4)


@settings(max_examples=40, deadline=None)
@given(case=image_and_box(max_side=60), size=st.integers(8, 40), seed=st.integers(0, 2**16))
def test_crop_keeps_boxes_on_their_pixels(case: tuple, size: int, seed: int) -> None:
    h, w, box = case
    image = painted(h, w, box)
    out, kept, keep = random_crop(image, torch.tensor([box], dtype=torch.float32), size,
                                  torch.Generator().manual_seed(seed))
    assert out.shape == (1, min(h, size), min(w, size))
    if keep[0]:
        assert kept[0].tolist() == extent(out)  # the clipped box is exactly the visible pixels
    else:
        visible = float((out > 127.5).sum())
        area = (box[2] - box[0]) * (box[3] - box[1])
        assert visible < MIN_VISIBLE * area or visible == 0 or min(extent(out)[2] - extent(out)[0],
                                                                    extent(out)[3] - extent(out)[1]) < 1
