"""A tile predictor running an exported ONNX file through ONNX Runtime.

Same contract as a torch model for :class:`~fsanet_geo.geo.detect.predict.TilePredictor`:
``predictor(Tensor[B, C, H, W] uint8 or float pixels) -> B dicts {"boxes": Tensor[N, 4]
xyxy tile pixels, "scores": Tensor[N], "labels": Tensor[N] int64}``, with ``class_names``
and ``config`` (the :class:`ModelConfig` read from the file's metadata).

The tiles are padded to multiples of 32 with each band's mean (which the graph normalises
to exactly 0, as the torch model pads with 0 after normalising); the graph gives the raw
head outputs and the post-processing is the torch model's own (see
:mod:`fsanet_geo.model.files.onnx_export`), so the detections equal the checkpoint's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.model.boxes import make_points
from fsanet_geo.model.config import ModelConfig
from fsanet_geo.model.detector import SIZE_DIVISOR, build_postprocessor
from fsanet_geo.model.files.onnx_export import INPUT_NAME, check_onnx_metadata, output_names
from fsanet_geo.model.outputs import HeadOutputs

INSTALL_HINT = "pip install 'fsanet-geo[onnx]'"


def _session_options(threads: int | None):  # -> onnxruntime.SessionOptions
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads if threads else torch.get_num_threads()
    return options


def _providers(device: str | torch.device) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if torch.device(device).type == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise ConfigError(
                "this onnxruntime has no CUDA support: install onnxruntime-gpu, or use --device cpu"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxPredictor:
    """``OnnxPredictor(path, device="cpu", threads=None)``: an exported model in ONNX Runtime.

    ``threads``: ONNX Runtime intra-op threads (default: torch's current thread count).
    Raises :class:`CheckpointError` for a file that is not an fsanet-geo ONNX export and
    :class:`ConfigError` when onnxruntime is not installed.
    """

    def __init__(self, path: str | os.PathLike[str], device: str | torch.device = "cpu", threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(f"{path} is an ONNX file: running it needs onnxruntime ({INSTALL_HINT})") from exc
        p = Path(path)
        if not p.is_file():
            raise CheckpointError(f"ONNX file {p} does not exist")
        try:
            self.session = ort.InferenceSession(str(p), _session_options(threads), providers=_providers(device))
        except Exception as exc:  # noqa: BLE001 - any runtime load failure is the file's
            raise CheckpointError(f"{p} does not load in ONNX Runtime: {str(exc).strip().splitlines()[0]}") from exc
        self.path = p
        self.metadata = check_onnx_metadata(p, dict(self.session.get_modelmeta().custom_metadata_map))
        try:
            self.config = ModelConfig.from_dict(json.loads(self.metadata["config"]))
        except (json.JSONDecodeError, ConfigError) as exc:
            raise CheckpointError(f"{p}: invalid model config in its metadata: {exc}") from exc
        self.postprocessor = build_postprocessor(self.config)
        self._outputs = output_names(len(self.config.strides))
        self._pad_value = np.asarray(self.config.image_mean, np.float32).reshape(1, -1, 1, 1)

    @property
    def class_names(self) -> list[str]:
        """Class name of each 0-based label."""
        return list(self.config.class_names)

    def raw_outputs(self, images: Tensor | Sequence[Tensor]) -> tuple[HeadOutputs, list[tuple[int, int]]]:
        """Run the graph: (head outputs as torch tensors, [(H, W)] of each image in pixels)."""
        if isinstance(images, Tensor):
            if images.dim() != 4:
                raise ConfigError(f"a batch of images must be Tensor[B, C, H, W], got shape {tuple(images.shape)}")
            arrays = list(images.detach().cpu().numpy())
        else:
            arrays = [t.detach().cpu().numpy() for t in images]
        if not arrays:
            raise ConfigError("no images given")
        bands = self.config.in_channels
        for index, image in enumerate(arrays):
            if image.ndim != 3 or image.shape[0] != bands:
                raise ConfigError(f"image {index} must be [C={bands}, H, W] for this model, got {image.shape}")
        sizes = [(int(a.shape[1]), int(a.shape[2])) for a in arrays]
        pad_h = -(-max(h for h, _ in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
        pad_w = -(-max(w for _, w in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
        batch = np.broadcast_to(self._pad_value, (len(arrays), bands, pad_h, pad_w)).copy()
        for index, (image, (h, w)) in enumerate(zip(arrays, sizes, strict=True)):
            batch[index, :, :h, :w] = image
        flat = [torch.from_numpy(a) for a in self.session.run(self._outputs, {INPUT_NAME: batch})]
        outputs = HeadOutputs(cls_logits=flat[0::3], box_refine=flat[1::3], centerness=flat[2::3])
        return outputs, sizes

    def __call__(self, images: Tensor | Sequence[Tensor]) -> list[dict[str, Tensor]]:
        """Detections per image: boxes (xyxy pixels), scores, labels (0-based)."""
        outputs, sizes = self.raw_outputs(images)
        points = make_points(outputs.sizes, self.config.strides, dtype=torch.float32)
        return self.postprocessor(outputs, points, sizes)

    def __repr__(self) -> str:
        return f"OnnxPredictor({str(self.path)!r}, preset={self.config.preset}, providers={self.session.get_providers()})"
