"""Point 15 of issue 17: NaN / Inf weights are refused at load naming the tensor; a run whose
model outputs are non-finite is warned about (instead of 0 detections and no word)."""

from __future__ import annotations

import copy
import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from fsanet_geo.errors import CheckpointError, NonFiniteOutputWarning
from fsanet_geo.geo.detect.nonfinite import NonFiniteWatch
from fsanet_geo.geo.detect.predict import TilePredictor
from fsanet_geo.geo.pixels.reader import TileData
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.windows import TileWindow
from fsanet_geo.io_utils import file_sha256
from fsanet_geo.model import build_model, load_model, save_checkpoint


@functools.cache
def _built() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("fcos_r18_lite", num_classes=2, class_names=["car", "ship"], input_size=64,
                       neck_channels=32, head_channels=32, num_tower_convs=1, score_thr=0.0)


def tiny_model() -> torch.nn.Module:
    """A fresh copy of one tiny random-init model (built once: building costs seconds)."""
    return copy.deepcopy(_built())


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path: Path) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.head.cls_logits.bias[1] = float("nan")
    path = save_checkpoint(model, tmp_path / "broken.safetensors")
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert str(err.value) == (
        f"{path}: tensor head.cls_logits.bias holds 1 non-finite value(s) (NaN or Inf): "
        "the checkpoint is damaged (e.g. saved from a training run that diverged)"
    )


def test_inf_counts_and_integer_tensors_pass() -> None:
    from fsanet_geo.model.files.checkpoint import _refuse_non_finite

    _refuse_non_finite(Path("ok.safetensors"), {"a": torch.ones(3), "steps": torch.tensor([2**40])})
    with pytest.raises(CheckpointError, match=r"^x.safetensors: tensor b holds 2 non-finite value\(s\) \(NaN or Inf\)"):
        _refuse_non_finite(Path("x.safetensors"), {"a": torch.ones(3),
                                                   "b": torch.tensor([1.0, float("inf"), -float("inf")])})


def test_a_loaded_model_carries_its_file_hash(tmp_path: Path) -> None:
    path = save_checkpoint(tiny_model(), tmp_path / "ok.safetensors")
    assert load_model(path).weights_sha256 == file_sha256(path)


def tile(index: int = 0) -> TileData:
    image = np.full((3, 64, 64), 120, np.uint8)
    return TileData(index, TileWindow(0, 0, 64, 64), image, None, False)


def test_an_fsanet_with_non_finite_head_outputs_warns() -> None:
    model = tiny_model()
    with torch.no_grad():
        model.head.cls_logits.bias.fill_(float("nan"))  # as a checkpoint loaded some other way would be
    predict = TilePredictor(model, torch.device("cpu"), DetectSettings(), None)
    with pytest.warns(NonFiniteOutputWarning, match="the model's raw head outputs hold NaN or Inf"):
        dets = predict([tile(0)])
    assert len(dets) == 0  # every NaN score fell under the threshold: without the warning, no word


class HeadOf(torch.nn.Module):
    """A predictor with a ``head`` whose raw output is ``value`` (NaN or a number); no detections."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.head = torch.nn.Identity()
        self.value = value

    def forward(self, batch: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        self.head(torch.full((len(batch), 2), self.value))
        return [{"boxes": torch.zeros((0, 4)), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}
                for _ in batch]


def test_non_finite_head_outputs_warn_once_per_run() -> None:
    predict = TilePredictor(HeadOf(float("inf")), torch.device("cpu"), DetectSettings(), None)
    with pytest.warns(NonFiniteOutputWarning) as caught:
        predict([tile(0)])
        predict([tile(1)])
    assert len([w for w in caught if w.category is NonFiniteOutputWarning]) == 1


def test_a_finite_model_does_not_warn_and_the_hook_goes_with_the_run() -> None:
    model = HeadOf(1.0)
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
