"""ONNX export: the round trip through ONNX Runtime equals torch; metadata; bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fsanet_geo.errors import CheckpointError, ConfigError, FileOverwriteError  # noqa: E402
from fsanet_geo.geo.detect.onnx_predictor import OnnxPredictor  # noqa: E402
from fsanet_geo.model import build_model, save_checkpoint  # noqa: E402
from fsanet_geo.model.files.checkpoint import load_inference_model  # noqa: E402
from fsanet_geo.model.files.onnx_check import compare_onnx  # noqa: E402
from fsanet_geo.model.files.onnx_export import ONNX_FORMAT, export_onnx, read_onnx_metadata  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random-init fsanet_r18_tiny (2 classes, 4 bands, extra metadata) and its ONNX file."""
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    model = build_model("fsanet_r18_tiny", num_classes=2, class_names=["car", "ship"], in_channels=4, score_thr=0.2)
    extra = {"epoch": "7", "stretch": "2,98", "gsd_m": "0.5"}
    ckpt = save_checkpoint(model.eval(), folder / "tiny.safetensors", extra_metadata=extra)
    return ckpt, export_onnx(ckpt, folder / "tiny.onnx").path


@pytest.fixture(scope="module")
def pair(exported: tuple[Path, Path]) -> tuple[torch.nn.Module, OnnxPredictor]:
    """The checkpoint loaded for inference (BN folded) and the ONNX file in ONNX Runtime."""
    return load_inference_model(exported[0]), OnnxPredictor(exported[1])


def test_metadata_carries_config_and_checkpoint_metadata(exported: tuple[Path, Path]) -> None:
    _, onnx_path = exported
    meta = read_onnx_metadata(onnx_path)
    assert meta["format"] == ONNX_FORMAT and meta["format_version"] == "1"
    config = json.loads(meta["config"])
    assert config["preset"] == "fsanet_r18_tiny" and config["in_channels"] == 4
    assert json.loads(meta["config.class_names"]) == ["car", "ship"]
    assert json.loads(meta["config.score_thr"]) == 0.2
    assert json.loads(meta["config.image_mean"]) == config["image_mean"]
    assert (meta["epoch"], meta["stretch"], meta["gsd_m"]) == ("7", "2,98", "0.5")
    assert meta["checkpoint_format"] == "fsanet-geo v1"


def test_opset_and_dynamic_axes(exported: tuple[Path, Path]) -> None:
    import onnx

    proto = onnx.load(str(exported[1]))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 4, "height", "width"]


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 64, 64), (2, 32, 96)])
def test_round_trip_raw_outputs_equal_torch(pair, batch: int, height: int, width: int) -> None:  # noqa: ANN001
    """Every head output of every level within 1e-4, at the export size and at another batch and size."""
    model, predictor = pair
    images = torch.randint(0, 256, (batch, 4, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model.forward_features(model.preprocess(images)[0])
    got, sizes = predictor.raw_outputs(images)
    assert sizes == [(height, width)] * batch
    for name in ("cls_logits", "box_refine", "centerness"):
        for ours, theirs in zip(getattr(got, name), getattr(expected, name), strict=True):
            assert ours.shape == theirs.shape
            torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_unpadded_tiles_give_the_same_detections(exported: tuple[Path, Path]) -> None:
    """A 50 x 70 tile is padded with the band means: the detections equal the torch model's."""
    ckpt, onnx_path = exported
    model = load_inference_model(ckpt)
    predictor = OnnxPredictor(onnx_path)
    predictor.postprocessor.score_thr = model.postprocessor.score_thr = 0.01  # type: ignore[union-attr]
    tile = torch.randint(0, 256, (4, 50, 70), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model([tile])[0]
    got = predictor([tile])[0]
    assert len(got["scores"]) == len(expected["scores"]) > 0
    torch.testing.assert_close(got["scores"], expected["scores"], atol=1e-4, rtol=0)
    torch.testing.assert_close(got["boxes"], expected["boxes"], atol=0.01, rtol=0)
    assert torch.equal(got["labels"], expected["labels"])
    assert predictor.class_names == ["car", "ship"]


def test_compare_onnx_reports_a_small_difference(exported: tuple[Path, Path]) -> None:
    report = compare_onnx(*exported, size=64)
    assert report.size == 64 and report.max_abs_diff < 1e-4
    assert report.onnx_detections == report.torch_detections


def test_bad_inputs(exported: tuple[Path, Path], pair, tmp_path: Path) -> None:  # noqa: ANN001
    ckpt, onnx_path = exported
    with pytest.raises(ConfigError, match="at least 17"):
        export_onnx(ckpt, tmp_path / "m.onnx", opset=16)
    with pytest.raises(FileOverwriteError):
        export_onnx(ckpt, onnx_path)
    not_ours = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(not_ours), dynamo=False)
    with pytest.raises(CheckpointError, match="not one exported by fsanet export"):
        OnnxPredictor(not_ours)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="does not load in ONNX Runtime"):
        OnnxPredictor(garbage)
    with pytest.raises(ConfigError, match=r"must be \[C=4, H, W\]"):
        pair[1](torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
