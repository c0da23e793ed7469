"""IoU loss and the FSANet / FCOS criteria on hand-computed single-level cases.

The hand case: one 2x2 level at stride 8 (points (4, 4), (12, 4), (4, 12), (12, 12)), one
unbounded regress range, K = 2 classes, one GT box (0, 0, 10, 10) of class 1. Only point 0
lies strictly inside, with initial target (4, 4, 6, 6).
"""

from __future__ import annotations

import math

import pytest
import torch
from helpers_targets import leaf, make_outputs

from fsanet_geo.model.boxes import make_points
from fsanet_geo.model.losses import FCOSCriterion, FSANetCriterion, iou_loss, reduce_mean
from fsanet_geo.model.targets import gaussian_centerness

SIZES = [(2, 2)]
STRIDES = (8,)
RANGES = ((-1.0, math.inf),)
K = 2
LN2 = math.log(2.0)


def _bce(logit: float, target: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(target * math.log(p) + (1 - target) * math.log(1 - p))


def _focal(logit: float, positive: bool, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    if positive:
        return -alpha * (1 - p) ** gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def _gt() -> list[dict]:
    return [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1])}]


def _empty_target() -> dict:
    return {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.long)}


def _hand_outputs(batch: int = 1):
    """Leaf tensors and HeadOutputs of the hand case (see module docstring)."""
    cls = leaf(torch.zeros((batch, 4, K)))
    # Point 0 predicts (1, 1, 1, 1): centre (4, 4), inside. Point 3 predicts (10, 10, 2, 2):
    # centre (8, 8), inside although point 3 is not. Points 1 and 2 stay outside.
    refine = leaf(
        torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [10, 10, 2, 2]]).expand(
            batch, 4, 4
        )
    )
    init = leaf(torch.tensor([[2.0, 2, 2, 2]]).expand(batch, 4, 4))
    ctr = leaf(torch.tensor([0.5, -1.0, 2.0, -0.25]).expand(batch, 4))
    outputs = make_outputs(SIZES, cls, refine, ctr, box_init=init)
    return outputs, (cls, refine, init, ctr)


def _criterion() -> FSANetCriterion:
    return FSANetCriterion(num_classes=K, strides=STRIDES, regress_ranges=RANGES)


def _points() -> list[torch.Tensor]:
    return make_points(SIZES, STRIDES)


def test_iou_loss_hand_boxes() -> None:
    pred = torch.tensor([[1.0, 1, 1, 1], [2, 2, 2, 2], [1, 1, 1, 1], [2.0, 4, 34, 4]])
    target = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 1], [4, 4, 6, 6], [-8.0, 8, 28, 12]])
    ones = torch.ones(1)
    assert iou_loss(pred[:1], target[:1], ones).item() == pytest.approx(0.0, abs=1e-6)
    assert iou_loss(pred[1:2], target[1:2], ones).item() == pytest.approx(math.log(4.0))
    assert iou_loss(pred[2:3], target[2:3], ones).item() == pytest.approx(-math.log(4 / 100))
    # Target with a negative component: decoded around (12, 28) it is the box
    # (20, 20, 40, 40), the prediction (10, 24, 46, 32): intersection 20 x 8, union 528.
    assert iou_loss(pred[3:], target[3:], ones).item() == pytest.approx(-math.log(160 / 528))
    weights = torch.tensor([0.0, 2.0, 0.5, 1.0])
    expected = 2 * math.log(4.0) - 0.5 * math.log(0.04) - math.log(160 / 528)
    assert iou_loss(pred, target, weights).item() == pytest.approx(expected, rel=1e-6)


def test_iou_loss_of_disjoint_boxes_is_clamped() -> None:
    loss = iou_loss(
        torch.tensor([[1.0, 1.0, -5.0, 1.0]]), torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.ones(1)
    )
    assert loss.item() == pytest.approx(-math.log(1e-6))


def test_fsanet_criterion_hand_values() -> None:
    outputs, _ = _hand_outputs()
    losses = _criterion()(outputs, _points(), _gt())
    assert set(losses) == {"cls", "box_init", "box_refine", "centerness"}

    # Initial positive: point 0 only, target (4, 4, 6, 6); init pred (2, 2, 2, 2):
    # IoU = 16 / 100; a single positive, so the centerness weight cancels.
    assert losses["box_init"].item() == pytest.approx(0.2 * -math.log(0.16), rel=1e-6)

    # Refine positives: point 0 (target (4, 4, 6, 6), pred (1, 1, 1, 1): IoU 4 / 100) and
    # point 3 (target from (12, 12): (12, 12, -2, -2), pred (10, 10, 2, 2): IoU 64 / 180).
    w0, w3 = math.exp(-0.08), math.exp(-3.92)
    expected_refine = (w0 * -math.log(0.04) + w3 * -math.log(64 / 180)) / (w0 + w3)
    assert losses["box_refine"].item() == pytest.approx(expected_refine, rel=1e-6)

    expected_ctr = (_bce(0.5, w0) + _bce(-0.25, w3)) / 2
    assert losses["centerness"].item() == pytest.approx(expected_ctr, rel=1e-6)

    # Focal loss with all logits 0 against the refine labels: 2 positive (point, class)
    # pairs, 6 negatives, divided by 2 refine positives.
    expected_cls = (2 * 0.25 * 0.25 * LN2 + 6 * 0.75 * 0.25 * LN2) / 2
    assert losses["cls"].item() == pytest.approx(expected_cls, rel=1e-6)


def test_fsanet_centerness_target_is_gaussian() -> None:
    w = gaussian_centerness(torch.tensor([[4.0, 4, 6, 6], [12.0, 12, -2, -2]]))
    assert torch.allclose(w, torch.tensor([math.exp(-0.08), math.exp(-3.92)]))


def test_loss_weights_scale_each_term() -> None:
    outputs, _ = _hand_outputs()
    base = _criterion()(outputs, _points(), _gt())
    weighted = FSANetCriterion(
        K,
        STRIDES,
        RANGES,
        weight_cls=2.0,
        weight_box_init=1.0,
        weight_box_refine=3.0,
        weight_centerness=0.5,
    )(outputs, _points(), _gt())
    assert weighted["cls"].item() == pytest.approx(2 * base["cls"].item())
    assert weighted["box_init"].item() == pytest.approx(5 * base["box_init"].item())
    assert weighted["box_refine"].item() == pytest.approx(3 * base["box_refine"].item())
    assert weighted["centerness"].item() == pytest.approx(0.5 * base["centerness"].item())


@pytest.mark.parametrize("criterion_cls", [FSANetCriterion, FCOSCriterion])
def test_image_without_objects_gives_zero_box_losses_with_gradient(criterion_cls) -> None:
    outputs, (cls, refine, init, ctr) = _hand_outputs()
    if criterion_cls is FCOSCriterion:
        outputs.box_init = None
    losses = criterion_cls(K, STRIDES, RANGES)(outputs, _points(), [_empty_target()])
    for name, value in losses.items():
        if name != "cls":
            assert value.item() == 0.0
            assert value.requires_grad
    # Focal loss normalised by max(positives, 1) = 1: 8 negative pairs at logit 0.
    assert losses["cls"].item() == pytest.approx(8 * 0.75 * 0.25 * LN2, rel=1e-6)
    sum(losses.values()).backward()
    for tensor in (refine, ctr) + ((init,) if criterion_cls is FSANetCriterion else ()):
        assert tensor.grad is not None
        assert torch.all(tensor.grad == 0)
    assert cls.grad is not None and torch.isfinite(cls.grad).all() and cls.grad.abs().sum() > 0


def test_gradients_are_finite_and_reach_every_prediction() -> None:
    outputs, (cls, refine, init, ctr) = _hand_outputs()
    losses = _criterion()(outputs, _points(), _gt())
    sum(losses.values()).backward()
    for tensor in (cls, refine, init, ctr):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
    # Box gradients only at positives: init at point 0, refine at points 0 and 3.
    assert init.grad[0, 0].abs().sum() > 0 and init.grad[0, 1:].abs().sum() == 0
    assert (
        refine.grad[0, [0, 3]].abs().sum(dim=1).min() > 0 and refine.grad[0, 1:3].abs().sum() == 0
    )


def test_empty_image_in_a_batch_only_adds_negatives() -> None:
    single, _ = _hand_outputs(batch=1)
    batch, _ = _hand_outputs(batch=2)
    one = _criterion()(single, _points(), _gt())
    two = _criterion()(batch, _points(), _gt() + [_empty_target()])
    for name in ("box_init", "box_refine", "centerness"):
        assert two[name].item() == pytest.approx(one[name].item(), rel=1e-6)
    # 8 more negative pairs at logit 0, same normaliser (2 refine positives).
    assert two["cls"].item() == pytest.approx(
        one["cls"].item() + 8 * 0.75 * 0.25 * LN2 / 2, rel=1e-6
    )


def test_refine_assignment_uses_the_refined_boxes_not_the_coarse_ones() -> None:
    outputs, _ = _hand_outputs()
    # Coarse boxes that would move every centre far away must not change the labels.
    outputs.box_init = [
        torch.full_like(m, 1.0) + torch.tensor([0.0, 0, 50, 50]).view(1, 4, 1, 1)
        for m in outputs.box_init
    ]
    losses = _criterion()(outputs, _points(), _gt())
    w0, w3 = math.exp(-0.08), math.exp(-3.92)
    assert losses["centerness"].item() == pytest.approx(
        (_bce(0.5, w0) + _bce(-0.25, w3)) / 2, rel=1e-6
    )


def test_fcos_criterion_hand_values() -> None:
    outputs, _ = _hand_outputs()
    outputs.box_init = None
    losses = FCOSCriterion(K, STRIDES, RANGES)(outputs, _points(), _gt())
    assert set(losses) == {"cls", "box", "centerness"}
    # Initial positive: point 0, target (4, 4, 6, 6), pred (1, 1, 1, 1): IoU 4 / 100.
    assert losses["box"].item() == pytest.approx(-math.log(0.04), rel=1e-6)
    # FCOS centerness target sqrt(4/6 * 4/6) = 2/3, one positive.
    assert losses["centerness"].item() == pytest.approx(_bce(0.5, 2 / 3), rel=1e-6)
    assert losses["cls"].item() == pytest.approx(
        0.25 * 0.25 * LN2 + 7 * 0.75 * 0.25 * LN2, rel=1e-6
    )


def test_focal_loss_matches_the_formula_for_nonzero_logits() -> None:
    outputs, (cls, *_rest) = _hand_outputs()
    logits = torch.tensor([[0.3, -1.2], [2.0, 0.1], [-0.7, 0.0], [1.5, -2.5]])
    outputs.cls_logits = make_outputs(
        SIZES, logits[None], torch.ones(1, 4, 4), torch.zeros(1, 4)
    ).cls_logits
    losses = _criterion()(outputs, _points(), _gt())
    positives = {(0, 1), (3, 1)}  # refine positives of class 1
    expected = (
        sum(_focal(logits[p, k].item(), (p, k) in positives) for p in range(4) for k in range(K))
        / 2
    )
    assert losses["cls"].item() == pytest.approx(expected, rel=1e-5)


def test_normalisers_are_averaged_over_processes(tmp_path) -> None:
    import torch.distributed as dist

    outputs, _ = _hand_outputs()
    plain = _criterion()(outputs, _points(), _gt())
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        assert reduce_mean(torch.tensor(3.0)).item() == 3.0
        distributed = _criterion()(outputs, _points(), _gt())
    finally:
        dist.destroy_process_group()
    for name, value in plain.items():
        assert distributed[name].item() == pytest.approx(value.item(), rel=1e-6)


def test_mismatched_inputs_are_rejected() -> None:
    outputs, _ = _hand_outputs()
    with pytest.raises(ValueError, match="classes"):
        FSANetCriterion(3, STRIDES, RANGES)(outputs, _points(), _gt())
    with pytest.raises(ValueError, match="levels"):
        FSANetCriterion(K, (8, 16), RANGES * 2)(outputs, _points(), _gt())
    outputs.box_init = None
    with pytest.raises(ValueError, match="box_init"):
        _criterion()(outputs, _points(), _gt())


def test_nearest_fallback_makes_a_box_between_points_a_positive() -> None:
    """The 2x2 px GT (5, 5, 7, 7) holds no stride-8 point: without the fallback it adds
    no positive; with it, point 0 at (4, 4) (nearest to the centre (6, 6)) regresses
    (-1, -1, 3, 3). Its coarse prediction (2, 2, 2, 2) is the box (2, 2, 6, 6): IoU 1/19."""
    tiny = [{"boxes": torch.tensor([[5.0, 5.0, 7.0, 7.0]]), "labels": torch.tensor([1])}]
    plain = _criterion()(_hand_outputs()[0], _points(), tiny)
    assert plain["box_init"].item() == 0.0 and plain["box_refine"].item() == 0.0
    fallback = FSANetCriterion(
        num_classes=K, strides=STRIDES, regress_ranges=RANGES, nearest_fallback=True
    )(_hand_outputs()[0], _points(), tiny)
    assert fallback["box_init"].item() == pytest.approx(0.2 * math.log(19.0), rel=1e-6)
    assert fallback["box_refine"].item() > 0
    # All logits are 0: 4 points x 2 classes of negatives, less the one positive now.
    assert plain["cls"].item() == pytest.approx(8 * _focal(0.0, False), rel=1e-6)
    assert fallback["cls"].item() == pytest.approx(
        7 * _focal(0.0, False) + _focal(0.0, True), rel=1e-6
    )


def test_fcos_fallback_positive_learns_its_box_with_per_object_centerness() -> None:
    """FCOS head (the tiny ablations): the 2x2 px GT (5, 5, 7, 7) between the stride-8
    points gets point 0 at (4, 4) as its fallback positive, target (-1, -1, 3, 3). Its FCOS
    centerness is 0 (the point is outside the box), which alone would give it no box-loss
    weight; per object, it is the object's only point and learns 1. Point 0 predicts
    (1, 1, 1, 1), the box (3, 3, 5, 5): no overlap, so IoU is clamped at 1e-6."""
    outputs, _ = _hand_outputs()
    outputs.box_init = None
    tiny = [{"boxes": torch.tensor([[5.0, 5.0, 7.0, 7.0]]), "labels": torch.tensor([1])}]

    def losses(per_object: bool) -> dict:
        return FCOSCriterion(
            K, STRIDES, RANGES, nearest_fallback=True, centerness_per_object=per_object
        )(outputs, _points(), tiny)

    plain, per_object = losses(False), losses(True)
    assert plain["box"].item() == 0.0
    assert plain["centerness"].item() == pytest.approx(_bce(0.5, 0.0), rel=1e-6)
    assert per_object["box"].item() == pytest.approx(-math.log(1e-6), rel=1e-5)
    assert per_object["centerness"].item() == pytest.approx(_bce(0.5, 1.0), rel=1e-6)


def test_per_object_centerness_gives_each_object_a_best_point_of_one() -> None:
    """Hand case, batch of two: image 0 holds the usual GT (refine positives 0 and 3,
    Gaussian targets w0 and w3); image 1 holds the 2x2 px GT (5, 5, 7, 7), whose only
    (fallback) positive, point 0, has target (-1, -1, 3, 3) and Gaussian exp(-8). Divided
    per object: 1 and w3 / w0 in image 0, 1 in image 1 (objects are counted per image:
    sharing image 0's maximum would leave it at exp(-8) / w0)."""
    targets = [
        _gt()[0],
        {"boxes": torch.tensor([[5.0, 5.0, 7.0, 7.0]]), "labels": torch.tensor([0])},
    ]
    criterion = FSANetCriterion(
        num_classes=K,
        strides=STRIDES,
        regress_ranges=RANGES,
        nearest_fallback=True,
        centerness_per_object=True,
    )
    losses = criterion(_hand_outputs(batch=2)[0], _points(), targets)
    w0, w3 = math.exp(-0.08), math.exp(-3.92)
    expected_ctr = (_bce(0.5, 1.0) + _bce(-0.25, w3 / w0) + _bce(0.5, 1.0)) / 3
    assert losses["centerness"].item() == pytest.approx(expected_ctr, rel=1e-6)
    # Box losses: image 1's positive now weighs as much as image 0's best one. Refine
    # pred (1, 1, 1, 1) at point 0 vs target (-1, -1, 3, 3): intersection 0 -> IoU clamped
    # at 1e-6; point 0 of image 0: IoU 0.04; point 3: IoU 64 / 180.
    clamp = -math.log(1e-6)
    expected_refine = (-math.log(0.04) + (w3 / w0) * -math.log(64 / 180) + clamp) / (2 + w3 / w0)
    assert losses["box_refine"].item() == pytest.approx(expected_refine, rel=1e-5)
    # Initial positives: point 0 of each image, one per object, so both weigh 1 (without
    # the normalisation image 1's would weigh exp(-8) / exp(-0.08) relative to image 0's).
    # Coarse pred (2, 2, 2, 2): IoU 16 / 100 vs (4, 4, 6, 6); 1 / 19 vs (-1, -1, 3, 3).
    expected_init = 0.2 * (-math.log(0.16) + math.log(19.0)) / 2
    assert losses["box_init"].item() == pytest.approx(expected_init, rel=1e-6)


def test_per_object_normalisation_values() -> None:
    from fsanet_geo.model.targets import normalise_per_object

    values = torch.tensor([0.2, 0.1, 0.5, 0.25, 1e-30, 0.0, 0.0])
    got = normalise_per_object(values, torch.tensor([0, 0, 2, 2, 3, 4, 4]), 6)
    # object 4's targets are all 0 (FCOS centerness of points outside or on its box): 1
    assert torch.equal(got, torch.tensor([1.0, 0.5, 1.0, 0.5, 1.0, 1.0, 1.0]))
    assert normalise_per_object(torch.zeros(0), torch.zeros(0, dtype=torch.long), 0).numel() == 0
