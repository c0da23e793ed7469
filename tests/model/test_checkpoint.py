"""Checkpoints: save -> load round trip, and a clear CheckpointError for every bad file."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fsanet_geo.errors import CheckpointError, ConfigError, FileOverwriteError
from fsanet_geo.model import build_model, load_model, read_checkpoint_config, save_checkpoint
from fsanet_geo.model.files.checkpoint import read_checkpoint_metadata

TINY = {"neck_channels": 32, "head_channels": 32, "num_tower_convs": 1}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = build_model("fsanet_r18_lite", num_classes=3, class_names=["car", "ship", "tank"],
                        in_channels=4, score_thr=0.0, nms="hard", max_per_img=30, **TINY)
    with torch.no_grad():  # make the weights differ from a fresh init everywhere that matters
        model.head.cls_logits.weight.normal_(std=0.5)
        model.head.cls_logits.bias.zero_()
        model.head.scales[0].scale.fill_(1.3)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(model, path, extra_metadata={"epoch": "3"})
    return path, model.eval()


def _write_with_config(path: Path, source: Path, change) -> Path:
    """Copy ``source`` with its metadata config changed by ``change(dict)``."""
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["config"])
    change(config)
    metadata["config"] = json.dumps(config)
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_save_load_gives_identical_outputs(saved) -> None:
    path, model = saved
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.config == model.config and loaded.class_names == ["car", "ship", "tank"]
    images = [torch.rand(4, 50, 70) * 255, torch.rand(4, 50, 70) * 255]
    with torch.no_grad():
        a, b = model(images), loaded(images)
    assert len(a[0]["boxes"]) > 0
    for da, db in zip(a, b):
        for key in ("boxes", "scores", "labels"):
            assert torch.equal(da[key], db[key])
    for (k, va), (_, vb) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(va, vb), k


def test_metadata_and_config(saved) -> None:
    path, model = saved
    metadata = read_checkpoint_metadata(path)
    assert metadata["format"] == "fsanet-geo" and metadata["format_version"] == "1"
    assert metadata["epoch"] == "3"
    config = read_checkpoint_config(path)
    assert config == model.config and config.in_channels == 4 and len(config.image_std) == 4


def test_overwrite_rules(saved, tmp_path: Path) -> None:
    _, model = saved
    target = tmp_path / "m.safetensors"
    save_checkpoint(model, target)
    save_checkpoint(model, target)  # overwrite=True by default
    with pytest.raises(FileOverwriteError):
        save_checkpoint(model, target, overwrite=False)
    with pytest.raises(ConfigError, match="reserved"):
        save_checkpoint(model, tmp_path / "x.safetensors", extra_metadata={"config": "{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


def test_truncated_file(saved, tmp_path: Path) -> None:
    data = saved[0].read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_model(bad)


def test_random_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "random.safetensors"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_model(bad)


class _Boom:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_file_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    bad = tmp_path / "model.pth"
    bad.write_bytes(pickle.dumps({"state_dict": _Boom(str(marker))}))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_model(bad)
    torch_file = tmp_path / "torch.pt"
    torch.save({"w": torch.zeros(2)}, torch_file)
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_model(torch_file)
    assert not marker.exists()


def test_foreign_safetensors(tmp_path: Path) -> None:
    bad = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(bad), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not an fsanet-geo checkpoint"):
        load_model(bad)


def test_wrong_class_count_names_the_keys(saved, tmp_path: Path) -> None:
    def five_classes(config: dict) -> None:
        config["num_classes"] = 5
        config["class_names"] = [f"c{i}" for i in range(5)]

    bad = _write_with_config(tmp_path / "five.safetensors", saved[0], five_classes)
    with pytest.raises(CheckpointError, match="do not fit its config") as info:
        load_model(bad)
    assert "head.cls_logits.weight has shape (3, 32, 3, 3), the model expects (5, 32, 3, 3)" in str(info.value)


def test_wrong_architecture_names_missing_keys(saved, tmp_path: Path) -> None:
    bad = _write_with_config(tmp_path / "fcos.safetensors", saved[0], lambda c: c.update(head="fcos"))
    with pytest.raises(CheckpointError, match="missing head.box|unexpected head"):
        load_model(bad)


def test_unknown_preset_in_metadata(saved, tmp_path: Path) -> None:
    bad = _write_with_config(tmp_path / "p.safetensors", saved[0], lambda c: c.update(preset="yolo_v9"))
    with pytest.raises(CheckpointError, match="unknown preset 'yolo_v9'"):
        load_model(bad)
    with pytest.raises(CheckpointError, match="unknown preset"):
        read_checkpoint_config(bad)


def test_invalid_config_and_version(saved, tmp_path: Path) -> None:
    bad = _write_with_config(tmp_path / "b.safetensors", saved[0], lambda c: c.update(backbone="vgg"))
    with pytest.raises(CheckpointError, match="invalid model config.*unknown backbone 'vgg'"):
        load_model(bad)
    with safe_open(str(saved[0]), framework="pt") as f:
        metadata = {**f.metadata(), "format_version": "9"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    future = tmp_path / "v9.safetensors"
    save_file(tensors, str(future), metadata=metadata)
    with pytest.raises(CheckpointError, match="format version '9'"):
        load_model(future)


def test_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a file"):
        load_model(tmp_path)


def test_cli_model_info(saved, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fsanet_cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["model", "info", str(saved[0]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["class_names"] == ["car", "ship", "tank"] and data["metadata"] == {"epoch": "3"}
    table = runner.invoke(app, ["model", "info", str(saved[0])])
    assert table.exit_code == 0 and "fsanet_r18_lite" in table.stdout
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"garbage")
    bad = runner.invoke(app, ["model", "info", str(junk)])
    assert bad.exit_code == 2 and "not a readable safetensors checkpoint" in bad.output
