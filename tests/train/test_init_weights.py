"""Fine-tuning: --init-weights starts a run from a checkpoint's weights and preset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import build_model, save_checkpoint
from fsanet_geo.model.files.class_transfer import load_with_class_transfer
from fsanet_geo.train.builders import build_detector

DEMO = Path(__file__).resolve().parents[2] / "fsanet_geo" / "weights" / "demo.safetensors"


def _tiny(**overrides: object) -> torch.nn.Module:
    return build_model("fsanet_r18_tiny", input_size=64, **overrides)


def test_init_weights_copies_every_tensor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = _tiny()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p))
    path = save_checkpoint(source, tmp_path / "source.safetensors")
    torch.manual_seed(1)
    target = _tiny()
    assert not torch.equal(target.head.box_init.weight, source.head.box_init.weight)
    load_with_class_transfer(target, str(path))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_init_weights_of_another_preset_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(_tiny(), tmp_path / "tiny.safetensors")
    other = build_model("fcos_r18_tiny", input_size=64)
    with pytest.raises(ConfigError, match="is a fsanet_r18_tiny, but --model is fcos_r18_tiny"):
        load_with_class_transfer(other, str(path))


def test_the_preset_comes_from_the_init_weights(tmp_path: Path) -> None:
    from fsanet_geo.train.config import TrainConfig
    from fsanet_geo.train.finetune import run_input_size
    from fsanet_geo.model.files.preset_choice import preset_for_run

    base = {"data_root": str(tmp_path)}
    assert preset_for_run(None, None) == "fsanet_r50" and TrainConfig(**base).model == "fsanet_r50"
    assert preset_for_run(None, DEMO) == preset_for_run("fsanet_r18_tiny", DEMO) == "fsanet_r18_tiny"
    config = TrainConfig(init_weights=DEMO, **base)
    assert config.model == "fsanet_r18_tiny" and run_input_size(config) == 800
    recipe = TrainConfig.for_preset(None, init_weights=str(DEMO), input_size=64, **base)
    assert (recipe.model, recipe.optimizer, run_input_size(recipe)) == ("fsanet_r18_tiny", "sgd", 64)
    message = (f"--init-weights {DEMO} is a fsanet_r18_tiny, but --model is fsanet_r50: "
               "leave --model out (or give --model fsanet_r18_tiny) to fine-tune it")
    with pytest.raises(ConfigError) as err:
        TrainConfig.for_preset("fsanet_r50", init_weights=str(DEMO), **base)
    assert str(err.value) == message
    with pytest.raises(ConfigError) as err:  # a config made without for_preset is refused when built
        build_detector(TrainConfig(model="fsanet_r50", init_weights=str(DEMO), **base), ["vehicle"])
    assert str(err.value) == message


def test_build_detector_fine_tunes_the_demo_to_one_class(tmp_path: Path) -> None:
    from fsanet_geo.train.config import TrainConfig

    config = TrainConfig(init_weights=str(DEMO), data_root=str(tmp_path), input_size=64)
    model = build_detector(config, ["vehicle"])
    assert (model.config.preset, model.class_names, model.config.input_size) == ("fsanet_r18_tiny", ["vehicle"], 64)
    assert model.class_transfer.kept == ("vehicle",) and len(model.class_transfer.dropped) == 7


def test_frozen_batchnorm_presets_refuse_random_init_but_fine_tune(tmp_path: Path) -> None:
    from fsanet_geo.data.classes import AITOD_CLASSES
    from fsanet_geo.train.config import TrainConfig

    names = list(AITOD_CLASSES)
    base = {"data_root": str(tmp_path), "input_size": 64}
    with pytest.raises(ConfigError, match=r"^fsanet_r18_lite keeps its backbone's BatchNorm frozen .* "
                       r"--pretrained-backbone imagenet .*\(fsanet_r18_tiny, fsanet_r18_medium\)$"):
        build_detector(TrainConfig.for_preset("fsanet_r18_lite", **base), names)
    # trainable norms train from scratch; frozen ones fine-tune from a checkpoint
    for preset in ("fsanet_r18_tiny", "fsanet_r18_medium"):
        assert build_detector(TrainConfig.for_preset(preset, **base), names).config.preset == preset
    path = save_checkpoint(build_model("fsanet_r18_lite", input_size=64), tmp_path / "lite.safetensors")
    model = build_detector(TrainConfig.for_preset("fsanet_r18_lite", init_weights=str(path), **base), names)
    assert model.config.preset == "fsanet_r18_lite"
