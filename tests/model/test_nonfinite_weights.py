"""Point 15 of issue 17: NaN / Inf weights are refused at load naming the tensor; a run whose
model outputs are non-finite is warned about (instead of 0 detections and no word)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fsanet_geo.errors import CheckpointError, NonFiniteOutputWarning
from fsanet_geo.geo.nonfinite import NonFiniteWatch
from fsanet_geo.geo.predict import TilePredictor
from fsanet_geo.geo.reader import TileData
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.windows import TileWindow
from fsanet_geo.io_utils import file_sha256
from fsanet_geo.model import build_model, load_model, save_checkpoint


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("fcos_r18_lite", num_classes=2, class_names=["car", "ship"], input_size=64,
                       neck_channels=32, head_channels=32, num_tower_convs=1, score_thr=0.0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path: Path, value: float) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.head.cls_logits.bias[1] = value
    path = save_checkpoint(model, tmp_path / "broken.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert str(err.value) == (
        f"{path}: tensor head.cls_logits.bias holds 1 non-finite value(s) (NaN or Inf): "
        "the checkpoint is damaged (e.g. saved from a training run that diverged)"
    )


def test_a_loaded_model_carries_its_file_hash(tmp_path: Path) -> None:
    path = save_checkpoint(tiny_model(), tmp_path / "ok.safetensors")
    assert load_model(path).weights_sha256 == file_sha256(path)


def tile(index: int = 0) -> TileData:
    image = np.full((3, 64, 64), 120, np.uint8)
    return TileData(index, TileWindow(0, 0, 64, 64), image, None, False)


def test_non_finite_head_outputs_warn_once_per_run() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.head.cls_logits.bias[0] = float("nan")  # as a checkpoint loaded some other way would be
    predict = TilePredictor(model, torch.device("cpu"), DetectSettings(), None)
    with pytest.warns(NonFiniteOutputWarning, match="the model's raw head outputs hold NaN or Inf") as caught:
        predict([tile(0)])
        predict([tile(1)])
    assert len([w for w in caught if w.category is NonFiniteOutputWarning]) == 1


def test_a_finite_model_does_not_warn_and_the_hook_goes_with_the_run() -> None:
    model = tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteOutputWarning)
        TilePredictor(model, torch.device("cpu"), DetectSettings(), None)([tile()])
    watch = NonFiniteWatch(model)
    assert len(model.head._forward_hooks) >= 1
    del watch
    import gc

    gc.collect()
    assert len(model.head._forward_hooks) == 0


def test_non_finite_detections_of_any_predictor_warn() -> None:
    def predictor(batch: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [{"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0]]), "scores": torch.tensor([float("nan")]),
                 "labels": torch.tensor([0])} for _ in batch]

    with pytest.warns(NonFiniteOutputWarning, match="the predictor's detections hold NaN or Inf"):
        TilePredictor(predictor, torch.device("cpu"), DetectSettings(), None)([tile()])
