"""Fine-tuning to other classes: classifier rows matched by class name, the rest strict."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import build_model, save_checkpoint
from fsanet_geo.model.files.checkpoint import load_model, read_checkpoint_config
from fsanet_geo.model.files.class_transfer import (
    ClassTransfer,
    classifier_tensors,
    finetune_config,
    load_with_class_transfer,
    transfer_weights,
)
from fsanet_geo.model.detector import FSANet

DEMO = Path(__file__).resolve().parents[2] / "fsanet_geo" / "weights" / "demo.safetensors"
DEMO_CLASSES = ("airplane", "bridge", "storage-tank", "ship", "swimming-pool", "vehicle", "person", "wind-mill")
CLASSIFIER = ("head.cls_logits.weight", "head.cls_logits.bias")
PRIOR_BIAS = -math.log((1 - 0.01) / 0.01)


@pytest.fixture(scope="module")
def demo() -> dict[str, torch.Tensor]:
    return load_model(DEMO).state_dict()


def fine_tuned(
    class_names: list[str], demo: dict[str, torch.Tensor]
) -> tuple[FSANet, dict[str, torch.Tensor], ClassTransfer]:
    """(model started from the demo's weights ``demo`` for ``class_names``, its fresh state
    before, the report); the checkpoint is read once per module, not once per test."""
    torch.manual_seed(0)
    model = FSANet(finetune_config(read_checkpoint_config(DEMO), class_names))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    return model, fresh, transfer_weights(model, demo, DEMO_CLASSES, source=str(DEMO), preset="fsanet_r18_tiny")


def assert_rest_equal(model: nn.Module, source: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert set(state) == set(source)
    for name, tensor in state.items():
        if name not in CLASSIFIER:
            assert torch.equal(tensor, source[name]), name


def test_demo_classes_and_classifier_tensors() -> None:
    config = read_checkpoint_config(DEMO)
    assert config.class_names == DEMO_CLASSES and config.preset == "fsanet_r18_tiny"
    assert classifier_tensors(build_model("fcos_r18_tiny", num_classes=3, input_size=64)) == list(CLASSIFIER)


def test_one_known_class_keeps_its_row_exactly(demo: dict[str, torch.Tensor]) -> None:
    model = FSANet(finetune_config(read_checkpoint_config(DEMO), ["vehicle"]))
    report = load_with_class_transfer(model, DEMO)
    state = model.state_dict()
    assert torch.equal(state["head.cls_logits.weight"], demo["head.cls_logits.weight"][5:6])
    assert torch.equal(state["head.cls_logits.bias"], demo["head.cls_logits.bias"][5:6])
    assert_rest_equal(model, demo)
    assert (report.kept, report.new, report.reordered) == (("vehicle",), (), False)
    assert report.dropped == tuple(n for n in DEMO_CLASSES if n != "vehicle")
    # the checkpoint's architecture and input size; the preset's score thresholds, not the demo's 0.35
    demo_config = read_checkpoint_config(DEMO)
    assert model.config.strides == (4, 8, 16) and model.config.input_size == demo_config.input_size == 800
    assert demo_config.score_thr == 0.35 and (model.config.score_thr, model.config.min_score) == (0.05, 0.001)


def test_new_classes_keep_the_fresh_rows_with_the_prior_bias(demo: dict[str, torch.Tensor]) -> None:
    model, fresh, report = fine_tuned(["boat", "dock"], demo)
    state = model.state_dict()
    assert torch.equal(state["head.cls_logits.weight"], fresh["head.cls_logits.weight"])
    assert torch.equal(state["head.cls_logits.bias"], torch.full((2,), PRIOR_BIAS))
    assert abs(float(state["head.cls_logits.weight"].std()) - 0.01) < 0.001  # Normal(0, 0.01)
    assert_rest_equal(model, demo)
    assert report.describe() == (
        f"fine-tuning from {DEMO} (fsanet_r18_tiny): kept none; new: boat, dock; dropped 8 classes: "
        "airplane, bridge, storage-tank, ship, swimming-pool, vehicle, person, wind-mill"
    )


def test_same_classes_in_another_order_permute_the_rows(demo: dict[str, torch.Tensor]) -> None:
    order = [5, 0, 7, 1, 6, 2, 4, 3]
    model, _, report = fine_tuned([DEMO_CLASSES[i] for i in order], demo)
    state = model.state_dict()
    for name in CLASSIFIER:
        assert torch.equal(state[name], demo[name][order]), name
    assert_rest_equal(model, demo)
    assert report.reordered and report.new == () and report.dropped == ()
    assert report.describe().endswith("(rows reordered to this run's class order)")


def test_names_match_case_sensitively_and_the_report_says_so(demo: dict[str, torch.Tensor]) -> None:
    _, _, report = fine_tuned(["Vehicle", "ship"], demo)
    assert report.kept == ("ship",) and report.new == ("Vehicle",) and "vehicle" in report.dropped
    assert report.describe().startswith(f"fine-tuning from {DEMO} (fsanet_r18_tiny): kept ship; new: Vehicle; "
                                         "dropped 7 classes: airplane, bridge, storage-tank, swimming-pool")
    assert report.describe().endswith("; class names match case-sensitively ('Vehicle' is not 'vehicle')")


def test_fcos_head_mixed_known_and_new_classes(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = build_model("fcos_r18_tiny", num_classes=3, class_names=["a", "b", "c"], input_size=64)
    path = save_checkpoint(source, tmp_path / "abc.safetensors")
    theirs = source.state_dict()
    torch.manual_seed(2)
    model = FSANet(finetune_config(read_checkpoint_config(path), ["c", "new", "a"]))
    fresh = model.state_dict()["head.cls_logits.weight"].clone()
    report = load_with_class_transfer(model, path)
    weight, bias = (model.state_dict()[n] for n in CLASSIFIER)
    assert torch.equal(weight[0], theirs["head.cls_logits.weight"][2])
    assert torch.equal(weight[1], fresh[1]) and float(bias[1]) == pytest.approx(PRIOR_BIAS)
    assert torch.equal(weight[2], theirs["head.cls_logits.weight"][0])
    assert torch.equal(bias[[0, 2]], theirs["head.cls_logits.bias"][[2, 0]])
    assert_rest_equal(model, theirs)
    assert (report.kept, report.new, report.dropped, report.reordered) == (("c", "a"), ("new",), ("b",), True)


def test_a_shape_mismatch_outside_the_classifier_names_the_tensor(demo: dict[str, torch.Tensor]) -> None:
    config = read_checkpoint_config(DEMO)
    model = FSANet(finetune_config(config, ["vehicle"], in_channels=4))  # a 4-band run from an RGB model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ConfigError) as err:
        transfer_weights(model, demo, DEMO_CLASSES, source=str(DEMO))
    assert str(err.value) == (
        f"--init-weights {DEMO} does not fit this run's model: tensor backbone.conv1.weight has shape "
        "(64, 3, 7, 7) there but (64, 4, 7, 7) in this run's model"
    )
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing copied


def test_missing_and_unexpected_tensors_are_named(demo: dict[str, torch.Tensor]) -> None:
    model = FSANet(finetune_config(read_checkpoint_config(DEMO), ["vehicle"]))
    state = dict(demo)
    state["extra.weight"] = state.pop("head.box_init.bias")
    with pytest.raises(ConfigError, match=r"does not fit this run's model: tensor head\.box_init\.bias is missing; "
                       r"tensor extra\.weight is not in this run's model$"):
        transfer_weights(model, state, DEMO_CLASSES, source="x")


def test_another_preset_is_refused_naming_both(tmp_path: Path) -> None:
    model = build_model("fsanet_r18_medium", num_classes=1, class_names=["vehicle"], input_size=64)
    with pytest.raises(ConfigError) as err:
        load_with_class_transfer(model, DEMO)
    assert str(err.value) == (f"--init-weights {DEMO} is a fsanet_r18_tiny, but --model is fsanet_r18_medium: "
                              "leave --model out (or give --model fsanet_r18_tiny) to fine-tune it")


class _Head(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.tower = nn.Conv2d(2, 2, 1)
        self.cls_logits = nn.Conv2d(2, num_classes, 1)


class _Net(nn.Module):
    """The smallest model with a classifier: for the property test."""

    def __init__(self, class_names: list[str]) -> None:
        super().__init__()
        self.class_names = class_names
        self.head = _Head(len(class_names))


@settings(max_examples=40, deadline=None)
@given(
    source=st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=7, unique=True),
    run=st.lists(st.sampled_from("abcdefgxyz"), min_size=1, max_size=8, unique=True),
)
def test_every_row_is_its_named_source_row_or_fresh(source: list[str], run: list[str]) -> None:
    torch.manual_seed(0)
    src = _Net(source).state_dict()
    model = _Net(run)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = transfer_weights(model, src, source)
    state = model.state_dict()
    for name in ("weight", "bias"):
        key = f"head.cls_logits.{name}"
        for i, cls in enumerate(run):
            expected = src[key][source.index(cls)] if cls in source else fresh[key][i]
            assert torch.equal(state[key][i], expected), (key, cls)
    assert torch.equal(state["head.tower.weight"], src["head.tower.weight"])
    assert set(report.kept) | set(report.new) == set(run) and not set(report.kept) & set(report.new)
    assert set(report.kept) | set(report.dropped) == set(source)
