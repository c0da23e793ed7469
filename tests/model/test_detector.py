"""The detector: input handling, output contract, batch invariance, no mutation, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import FSANet, build_model

TINY = {"neck_channels": 32, "head_channels": 32, "num_tower_convs": 1}


def _model(preset: str = "fsanet_r18_lite", **overrides: object) -> FSANet:
    torch.manual_seed(0)
    return build_model(preset, num_classes=3, **{**TINY, **overrides})


def _spread_scores(model: FSANet) -> None:
    """Random-init scores all sit near the 0.01 prior; spread them so detections differ."""
    with torch.no_grad():
        nn.init.normal_(model.head.cls_logits.weight, std=0.5)
        model.head.cls_logits.bias.zero_()


def _images(batch: int, height: int, width: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, height, width), generator=gen, dtype=torch.uint8) for _ in range(batch)]


def _targets(batch: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for i in range(batch):
        if i == 1:  # an image without objects
            out.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)})
        else:
            out.append({"boxes": torch.tensor([[10.0, 12.0, 22.0, 20.0], [40.0, 30.0, 46.0, 38.0]]),
                        "labels": torch.tensor([0, 2])})
    return out


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(("height", "width"), [(70, 100), (64, 96), (33, 31)])
def test_output_contract_for_odd_sizes(batch: int, height: int, width: int) -> None:
    model = _model(score_thr=0.0, max_per_img=20, nms="hard").eval()
    _spread_scores(model)
    images = _images(batch, height, width)
    with torch.no_grad():
        dets = model(images)
        padded, sizes = model.preprocess(images)
        raw = model.forward_features(padded)
    assert padded.shape == (batch, 3, -(-height // 32) * 32, -(-width // 32) * 32)
    assert sizes == [(height, width)] * batch
    assert raw.sizes == [(padded.shape[2] // s, padded.shape[3] // s) for s in (8, 16, 32)]
    assert len(dets) == batch
    for det in dets:
        assert set(det) == {"boxes", "scores", "labels"}
        n = det["boxes"].shape[0]
        assert 0 < n <= 20
        assert det["scores"].shape == (n,) and det["labels"].shape == (n,)
        assert det["labels"].dtype == torch.int64 and det["labels"].max() < 3
        assert (det["boxes"][:, 0::2] >= 0).all() and (det["boxes"][:, 0::2] <= width).all()
        assert (det["boxes"][:, 1::2] >= 0).all() and (det["boxes"][:, 1::2] <= height).all()
        assert (det["scores"][:-1] >= det["scores"][1:]).all()
    model.train()
    losses = model(images, _targets(batch))
    assert set(losses) == {"cls", "box_init", "box_refine", "centerness"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())


def test_batch_equals_one_at_a_time() -> None:
    model = _model(score_thr=0.0, max_per_img=50, nms="hard").eval()
    _spread_scores(model)
    images = _images(3, 70, 100)
    batch = torch.stack(images)
    with torch.no_grad():
        together_list = model(images)
        together_tensor = model(batch)
        alone = [model([img])[0] for img in images]
    for together in (together_list, together_tensor):
        for a, b in zip(together, alone):
            assert a["boxes"].shape == b["boxes"].shape
            torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-4, rtol=0)
            torch.testing.assert_close(a["scores"], b["scores"], atol=1e-4, rtol=0)
            assert torch.equal(a["labels"], b["labels"])


def test_inputs_are_not_mutated() -> None:
    model = _model(nms="soft_linear")
    float_images = [img.float() for img in _images(2, 64, 80)]
    uint8_images = _images(2, 64, 80)
    targets = _targets(2)
    copies = [t.clone() for t in float_images + uint8_images]
    target_copies = [{k: v.clone() for k, v in t.items()} for t in targets]
    model.train()
    model(float_images, targets)
    model.eval()
    with torch.no_grad():
        model(uint8_images)
        model(torch.stack(float_images))
    for a, b in zip(float_images + uint8_images, copies):
        assert torch.equal(a, b) and a.dtype == b.dtype
    for t, c in zip(targets, target_copies):
        assert set(t) == set(c) and all(torch.equal(t[k], c[k]) for k in c)


def test_uint8_and_float_inputs_agree() -> None:
    model = _model().eval()
    images = _images(1, 40, 50)
    with torch.no_grad():
        a = model.forward_features(model.preprocess(images)[0])
        b = model.forward_features(model.preprocess([images[0].float()])[0])
    torch.testing.assert_close(a.cls_logits[0], b.cls_logits[0])


def test_normalisation_and_padding_values() -> None:
    model = _model()
    mean = torch.tensor(model.config.image_mean).view(3, 1, 1)
    std = torch.tensor(model.config.image_std).view(3, 1, 1)
    image = mean.expand(3, 5, 7) + 2 * std.expand(3, 5, 7)  # normalises to 2.0 everywhere
    padded, sizes = model.preprocess([image])
    assert padded.shape == (1, 3, 32, 32) and sizes == [(5, 7)]
    torch.testing.assert_close(padded[0, :, :5, :7], torch.full((3, 5, 7), 2.0))
    assert torch.count_nonzero(padded[0, :, 5:, :]) == 0 and torch.count_nonzero(padded[0, :, :, 7:]) == 0


def test_bad_inputs_give_config_errors() -> None:
    model = _model()
    with pytest.raises(ConfigError, match="4 bands but the model expects 3"):
        model([torch.zeros(4, 32, 32)], _targets(1))
    with pytest.raises(ConfigError, match="Tensor\\[B, C, H, W\\]"):
        model(torch.zeros(3, 32, 32))
    with pytest.raises(ConfigError, match="targets are required"):
        model([torch.zeros(3, 32, 32)])
    with pytest.raises(ConfigError, match="no images"):
        model([])


def test_gradient_flows_through_both_stages() -> None:
    model = _model()
    model.train()
    losses = model(_images(2, 64, 64), _targets(2))
    sum(losses.values()).backward()
    head = model.head
    for module in (head.box_init, head.offset, head.cls_deform, head.reg_deform, head.box_refine,
                   head.cls_logits, head.centerness, model.neck.align[0].pointwise, model.backbone.layer2[0].conv1):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0, module
    assert model.backbone.layer1[0].conv1.weight.grad is None  # frozen stage 1


def test_empty_targets_give_zero_box_losses_with_gradient() -> None:
    model = _model()
    model.train()
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    losses = model(_images(1, 48, 48), empty)
    assert losses["box_refine"].item() == 0.0 and losses["centerness"].item() == 0.0
    assert losses["cls"].item() > 0
    sum(losses.values()).backward()
    assert model.head.cls_logits.weight.grad is not None


@pytest.mark.parametrize(
    ("preset", "keys"),
    [
        ("fcos_r18_lite", {"cls", "box", "centerness"}),
        ("fcos_fa2m_r18_lite", {"cls", "box", "centerness"}),
        ("fcos_sagh_r18_lite", {"cls", "box_init", "box_refine", "centerness"}),
    ],
)
def test_ablation_variants_train_and_detect(preset: str, keys: set[str]) -> None:
    model = _model(preset)
    model.train()
    losses = model(_images(2, 40, 72), _targets(2))
    assert set(losses) == keys
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        assert len(model(_images(2, 40, 72))) == 2


@pytest.mark.parametrize("bands", [1, 4])
def test_other_band_counts_end_to_end(bands: int) -> None:
    model = _model(in_channels=bands)
    assert len(model.config.image_mean) == bands
    model.train()
    images = [torch.rand(bands, 50, 60) * 255 for _ in range(2)]
    losses = model(images, _targets(2))
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        assert len(model(images)) == 2


def test_class_names_and_config() -> None:
    model = build_model("fsanet_r18_lite", num_classes=2, class_names=["car", "ship"], **TINY)
    assert model.class_names == ["car", "ship"]
    assert model.config.preset == "fsanet_r18_lite" and model.num_classes == 2
    assert "fsanet_r18_lite" in repr(model)


@pytest.mark.parametrize(("config_name", "method"), [("hard", "hard"), ("soft_linear", "linear"), ("soft_gaussian", "gaussian")])
def test_inference_settings_reach_the_postprocessor(config_name: str, method: str) -> None:
    model = _model(nms=config_name, score_thr=0.2, nms_iou=0.6, max_per_img=7)
    post = model.postprocessor
    assert post.nms == method and post.score_thr == 0.2 and post.nms_iou == 0.6 and post.max_per_img == 7


def test_channels_last_inference_path_gives_the_same_outputs() -> None:
    model = _model().eval()
    batch, _ = model.preprocess(_images(2, 64, 96))
    with torch.no_grad():
        plain = model.forward_features(batch)
        fast = model.forward_features(batch.contiguous(memory_format=torch.channels_last))
    for name in ("cls_logits", "box_refine", "centerness", "box_init"):
        for a, b in zip(getattr(plain, name), getattr(fast, name)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
