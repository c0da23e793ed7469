"""Fine-tuning: --init-weights starts a run from a checkpoint's weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fsanet_geo.errors import ConfigError
from fsanet_geo.model import build_model, save_checkpoint
from fsanet_geo.train.builders import load_init_weights


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
    load_init_weights(target, str(path))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name


def test_init_weights_of_another_preset_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(_tiny(), tmp_path / "tiny.safetensors")
    other = build_model("fcos_r18_tiny", input_size=64)
    with pytest.raises(ConfigError, match="fsanet_r18_tiny with 8 classes.*fcos_r18_tiny"):
        load_init_weights(other, str(path))


def test_frozen_batchnorm_presets_refuse_random_init_but_fine_tune(tmp_path: Path) -> None:
    from fsanet_geo.data.classes import AITOD_CLASSES
    from fsanet_geo.train.builders import build_detector
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
