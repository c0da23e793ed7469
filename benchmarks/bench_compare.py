"""Before / after / ONNX Runtime, in one run: the comparison table of ``bench_model.py``.

Variants of one random-init model (seed 0), timed interleaved (one forward of each per
round, best of the rounds) on the same uint8 tile, post-processing included:

- ``before``: the deformable convs through grid_sample + matmul, BatchNorm unfolded (the
  CPU inference path before issue 15);
- ``after``: fused-gather deformable convs, BatchNorm folded (what ``fsanet detect`` runs);
- ``ORT``: the model exported by ``fsanet export`` and run by ONNX Runtime (CPU, same
  thread count), when onnx and onnxruntime are installed.

torchvision's ``fcos_resnet50_fpn`` (random init, ``min_size = max_size = tile``) is the
reference for ``fsanet_r50``; ``fcos_r18_tiny`` (same body, plain FPN and FCOS head) is
the twin of ``fsanet_r18_tiny``.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

import fsanet_geo.model.deform as deform
from fsanet_geo.model import build_model, save_checkpoint
from fsanet_geo.model.fold_bn import fold_batchnorm

PAIRS = (("fsanet_r18_tiny", "fcos_r18_tiny"), ("fsanet_r50", "torchvision fcos_resnet50_fpn"))
TORCHVISION = "torchvision fcos_resnet50_fpn"


@contextlib.contextmanager
def grid_sample_deform() -> Iterator[None]:
    """Run the deformable convs through the grid-sample path (the ``before`` variant)."""
    saved = deform.deform_conv3x3_gather
    deform.deform_conv3x3_gather = deform.deform_conv3x3_sampled  # type: ignore[assignment]
    try:
        yield
    finally:
        deform.deform_conv3x3_gather = saved  # type: ignore[assignment]


def _onnx_runner(model: torch.nn.Module, folder: Path) -> Callable[[torch.Tensor], object] | None:
    try:
        from fsanet_geo.geo.onnx_predictor import OnnxPredictor
        from fsanet_geo.model.onnx_export import export_onnx
    except ImportError:
        return None
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    name = model.config.preset
    ckpt = save_checkpoint(model, folder / f"{name}.safetensors")
    path = export_onnx(ckpt, folder / f"{name}.onnx").path
    predictor = OnnxPredictor(path, threads=torch.get_num_threads())
    return lambda tile: predictor([tile])


def _variants(name: str, size: int, folder: Path) -> dict[str, Callable[[torch.Tensor], object]]:
    """label -> callable(tile) for one model."""
    if name == TORCHVISION:
        from torchvision.models.detection import fcos_resnet50_fpn

        tv = fcos_resnet50_fpn(weights=None, weights_backbone=None, min_size=size, max_size=size).eval()
        run = lambda tile: tv([tile.float() / 255])  # noqa: E731
        return {"before": run, "after": run}
    torch.manual_seed(0)
    before = build_model(name).eval()
    after = copy.deepcopy(before)
    fold_batchnorm(after)

    def run_before(tile: torch.Tensor) -> object:
        with grid_sample_deform():
            return before([tile])

    out: dict[str, Callable[[torch.Tensor], object]] = {"before": run_before, "after": lambda tile: after([tile])}
    ort = _onnx_runner(before, folder)
    if ort is not None:
        out["ORT"] = ort
    return out


def compare(size: int, repeats: int) -> dict[str, dict[str, float]]:
    """{model: {variant: best ms per tile}} for every model of :data:`PAIRS`, interleaved."""
    tile = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: _variants(name, size, Path(tmp)) for pair in PAIRS for name in pair}
        best: dict[str, dict[str, float]] = {name: {} for name in runs}
        with torch.inference_mode():
            for round_ in range(repeats + 1):  # round 0 warms up
                for name, variants in runs.items():
                    for label, fn in variants.items():
                        start = time.perf_counter()
                        fn(tile)
                        ms = 1000 * (time.perf_counter() - start)
                        if round_:
                            best[name][label] = min(ms, best[name].get(label, float("inf")))
    return best


def print_comparison(size: int, repeats: int) -> None:
    """Print the before / after / ORT table and the ratios of each pair (markdown)."""
    best = compare(size, repeats)
    labels = ["before", "after", "ORT"]
    print(f"Before / after / ONNX Runtime, CPU, {size}x{size} tile, best of {repeats} interleaved rounds:\n")
    print("| model | before ms | after ms | ONNX Runtime ms | before / after |")
    print("|---|---:|---:|---:|---:|")
    for name, row in best.items():
        cells = [f"{row[k]:.0f}" if k in row else "-" for k in labels]
        print(f"| {name} | {' | '.join(cells)} | {row['before'] / row['after']:.2f} |")
    print("\n| ratio | before | after | ONNX Runtime |")
    print("|---|---:|---:|---:|")
    for model, reference in PAIRS:
        cells = []
        for k in labels:
            ref = best[reference].get(k, best[reference]["after"])
            cells.append(f"{best[model][k] / ref:.2f}" if k in best[model] else "-")
        print(f"| {model} / {reference} | {' | '.join(cells)} |")
    print()
