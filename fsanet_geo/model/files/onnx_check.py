"""Compare an exported ONNX file with its checkpoint: ONNX Runtime against torch on one tile.

Used by ``fsanet export`` after writing (``--check``, on by default) and by the benchmark.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from fsanet_geo.errors import ConfigError


@dataclass(frozen=True)
class OnnxComparison:
    """How far ONNX Runtime's outputs are from torch's on a random ``size`` x ``size`` tile.

    ``max_abs_diff``: largest absolute difference over every raw head output (logits and
    distances in pixels); ``*_detections``: detections each gives after post-processing.
    """

    size: int
    max_abs_diff: float
    torch_detections: int
    onnx_detections: int


def onnxruntime_available() -> bool:
    """Whether the ``onnxruntime`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def compare_onnx(
    checkpoint: str | os.PathLike[str], onnx_path: str | os.PathLike[str], size: int = 96, seed: int = 0
) -> OnnxComparison:
    """Run the checkpoint (torch, BN folded) and the ONNX file on the same random uint8 tile.

    Raises :class:`ConfigError` when onnxruntime is not installed.
    """
    from fsanet_geo.geo.detect.onnx_predictor import INSTALL_HINT, OnnxPredictor
    from fsanet_geo.model.files.checkpoint import load_inference_model

    if not onnxruntime_available():
        raise ConfigError(f"comparing with ONNX Runtime needs onnxruntime ({INSTALL_HINT})")
    model = load_inference_model(checkpoint)
    predictor = OnnxPredictor(onnx_path)
    gen = torch.Generator().manual_seed(seed)
    tile = torch.randint(0, 256, (1, model.config.in_channels, size, size), dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        batch, _ = model.preprocess(tile)
        expected = model.forward_features(batch)
        detections = model(tile)[0]
    got, _ = predictor.raw_outputs(tile)
    pairs = zip(
        got.cls_logits + got.box_refine + got.centerness,
        expected.cls_logits + expected.box_refine + expected.centerness,
        strict=True,
    )
    diff = max(float((a - b).abs().max()) for a, b in pairs)
    return OnnxComparison(size, diff, len(detections["scores"]), len(predictor(tile)[0]["scores"]))
