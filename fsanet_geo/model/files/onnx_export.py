"""Export a checkpoint's network to ONNX, with its config in the file's metadata.

The graph (:class:`OnnxGraph`) is the network of :class:`~fsanet_geo.model.detector.FSANet`
with BatchNorm folded, from raw pixels to the raw head outputs:

- input ``images``: float32 Tensor[B, C, H, W] in pixel units (0-255), H and W multiples
  of 32 (``SIZE_DIVISOR``), padded with each band's mean so that the padding normalises to
  exactly 0 as in the torch model; B, H and W are dynamic;
- normalisation ``(x - mean) / std`` in the graph;
- outputs, per pyramid level l (finest first): ``cls_l`` Tensor[B, K, H_l, W_l] logits,
  ``box_l`` Tensor[B, 4, H_l, W_l] (l, t, r, b) distances in input pixels, ``ctr_l``
  Tensor[B, 1, H_l, W_l] centerness logits.

Post-processing (scores, top-k, NMS, ``max_per_img``) stays in Python: it is the same
:class:`~fsanet_geo.model.postprocess.PostProcessor` the torch model uses, so the ONNX
detections equal the checkpoint's (ONNX's ``NonMaxSuppression`` has no soft-NMS and
would differ at ties). The deformable convs are traced through their grid-sample form
(``GridSample``, opset 16+); the exporter is torch's TorchScript-based one
(``dynamo=False``), which needs no extra package.

Metadata (``metadata_props``, all strings): ``format`` = ``fsanet-geo-onnx``,
``format_version``, ``config`` (the ModelConfig JSON), every other key of the
checkpoint's own metadata as is (epoch, stretch, GSD, ... whatever the checkpoint
carries), and ``config.FIELD`` = the JSON of each config field (class_names,
in_channels, image_mean, image_std, score_thr, strides, ...) for readers outside Python.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.io_utils import atomic_path
from fsanet_geo.model.files.checkpoint import check_format_metadata
from fsanet_geo.model.detector import SIZE_DIVISOR, FSANet

ONNX_FORMAT = "fsanet-geo-onnx"
ONNX_FORMAT_VERSION = "1"
MIN_OPSET = 17
INPUT_NAME = "images"
OUTPUT_KINDS = ("cls", "box", "ctr")
_DUMMY_SIDE = 64


def output_names(levels: int) -> list[str]:
    """``cls_0, box_0, ctr_0, cls_1, ...``: the graph's outputs for ``levels`` levels."""
    return [f"{kind}_{level}" for level in range(levels) for kind in OUTPUT_KINDS]


class OnnxGraph(nn.Module):
    """``forward(images: Tensor[B, C, H, W] float pixels) -> (cls_0, box_0, ctr_0, ...)``."""

    def __init__(self, model: FSANet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        batch = (images - self.model.image_mean) / self.model.image_std
        out = self.model.forward_features(batch)
        flat: list[Tensor] = []
        for cls, box, ctr in zip(out.cls_logits, out.box_refine, out.centerness, strict=True):
            flat += [cls, box, ctr]
        return tuple(flat)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_onnx` wrote: the file, its opset and its metadata."""

    path: Path
    opset: int
    metadata: dict[str, str]


def onnx_metadata(checkpoint_metadata: dict[str, str], config_dict: dict[str, object]) -> dict[str, str]:
    """The ONNX metadata for a checkpoint's metadata and its config (see module docstring)."""
    metadata = {k: v for k, v in checkpoint_metadata.items() if k not in ("format", "format_version")}
    metadata["checkpoint_format"] = f"{checkpoint_metadata.get('format')} v{checkpoint_metadata.get('format_version')}"
    metadata["format"] = ONNX_FORMAT
    metadata["format_version"] = ONNX_FORMAT_VERSION
    metadata["config"] = json.dumps(config_dict)
    metadata["input"] = (
        f"{INPUT_NAME}: float32 [B, C, H, W] pixels 0-255, H and W multiples of {SIZE_DIVISOR}, "
        "padded with each band's image_mean"
    )
    for key, value in config_dict.items():
        metadata[f"config.{key}"] = json.dumps(value)
    return metadata


def export_onnx(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    opset: int = MIN_OPSET,
    overwrite: bool = False,
) -> ExportResult:
    """Export the network of ``checkpoint`` to ``output`` (written atomically).

    Raises:
        CheckpointError: the checkpoint does not load.
        ConfigError: ``opset`` below 17, or the ``onnx`` package is missing.
        FileOverwriteError: ``output`` exists and ``overwrite`` is false.
    """
    from fsanet_geo.model.files.checkpoint import read_checkpoint_metadata
    from fsanet_geo.model.files.checkpoint import load_inference_model

    if opset < MIN_OPSET:
        raise ConfigError(f"--opset must be at least {MIN_OPSET} (GridSample and LayerNorm), got {opset}")
    try:
        import onnx
    except ImportError as exc:
        raise ConfigError("ONNX export needs the onnx package: pip install 'fsanet-geo[onnx]'") from exc
    model = load_inference_model(checkpoint, device="cpu")
    metadata = onnx_metadata(read_checkpoint_metadata(checkpoint), model.config.to_dict())
    graph = OnnxGraph(model).eval()
    dummy = torch.zeros(1, model.config.in_channels, _DUMMY_SIDE, _DUMMY_SIDE)
    names = output_names(len(model.config.strides))
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    dynamic.update({n: {0: "batch", 2: f"height_{n[-1]}", 3: f"width_{n[-1]}"} for n in names})
    with atomic_path(output, overwrite=overwrite) as tmp:
        with torch.no_grad(), warnings.catch_warnings():
            # Shape checks evaluated once while tracing: true for every input of the documented form.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
            torch.onnx.export(
                graph, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=names,
                dynamic_axes=dynamic, opset_version=opset, dynamo=False,
            )
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        del proto.metadata_props[:]
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=value)
        proto.doc_string = f"fsanet-geo {model.config.preset}: {', '.join(model.class_names)}"
        onnx.save(proto, str(tmp))
    return ExportResult(Path(output), opset, metadata)


def read_onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an fsanet-geo ONNX file (format checked), read through ``onnx``."""
    import onnx

    p = Path(path)
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure
        raise CheckpointError(f"{p} is not a readable ONNX file: {exc}") from exc
    return check_onnx_metadata(p, {m.key: m.value for m in proto.metadata_props})


def check_onnx_metadata(path: Path, metadata: dict[str, str]) -> dict[str, str]:
    """``metadata`` if it is an fsanet-geo ONNX file's, else a CheckpointError naming the problem."""
    return check_format_metadata(path, metadata, fmt=ONNX_FORMAT, version=ONNX_FORMAT_VERSION,
                                 kind="an ONNX file", ours="one exported by fsanet export", version_name="fsanet ONNX")
