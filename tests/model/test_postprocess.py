"""The post-processor on hand-computed cases (its NMS is tested in tests/ops/test_nms.py)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers_targets import make_outputs

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.boxes import make_points
from fsanet_geo.model.postprocess import PostProcessor

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


def test_unknown_nms_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="soft"):
        PostProcessor(nms="soft")


def test_calibrated_cuts_apply_per_class_to_the_final_score() -> None:
    points = make_points(SIZES, [8])
    # final scores: class 1 0.63 (0.9 * 0.7), class 0 0.48 (0.6 * 0.8)
    (both,) = PostProcessor(score_thr=0.05, class_score_thr=(0.48, 0.63))(_outputs(), points, [(20, 20)])
    assert both["labels"].tolist() == [1, 0]
    (only_1,) = PostProcessor(score_thr=0.05, class_score_thr=(0.5, 0.6))(_outputs(), points, [(20, 20)])
    assert only_1["labels"].tolist() == [1]  # 0.48 < 0.5, though its class score 0.6 passes
    (only_0,) = PostProcessor(score_thr=0.05, class_score_thr=(0.1, 0.7))(_outputs(), points, [(20, 20)])
    assert only_0["labels"].tolist() == [0]


def test_caps_scale_with_the_image_area_beyond_800_px() -> None:
    from fsanet_geo.model.postprocess import scaled_cap

    assert scaled_cap(1500, (800, 800)) == 1500 and scaled_cap(1500, (256, 256)) == 1500
    assert scaled_cap(1500, (801, 800)) == 3000
    assert scaled_cap(1500, (3000, 3000)) == 1500 * 15  # ceil(9e6 / 640000) = 15
    sizes = [(3, 3), (2, 2)]
    points = make_points(sizes, [8, 16])
    n = 13
    probs = torch.linspace(0.1, 0.9, n)
    outputs = make_outputs(sizes, torch.log(probs / (1 - probs))[None, :, None], torch.full((1, n, 4), 2.0),
                           torch.full((1, n), 50.0))
    (small,) = PostProcessor(nms_pre=100, max_per_img=3)(outputs, points, [(64, 64)])
    (large,) = PostProcessor(nms_pre=100, max_per_img=3)(outputs, points, [(1600, 1600)])
    assert len(small["scores"]) == 3 and len(large["scores"]) == 12  # 3 * ceil(1600**2 / 800**2)


def test_set_score_thresholds_reaches_the_config_and_the_post_processor() -> None:
    from fsanet_geo.model import build_model
    from fsanet_geo.model.detector import set_score_thresholds

    model = build_model("fsanet_r18_tiny", num_classes=2)
    set_score_thresholds(model, 0.2, (0.2, 0.4))
    assert model.config.score_thr == 0.2 and model.config.class_score_thr == (0.2, 0.4)
    assert model.postprocessor.score_thr == 0.2 and model.postprocessor.class_score_thr == (0.2, 0.4)
    set_score_thresholds(model, 0.3)
    assert model.config.class_score_thr is None and model.postprocessor.class_score_thr is None
    with pytest.raises(ConfigError, match="one threshold per class"):
        model.config.replace(class_score_thr=(0.1,))
