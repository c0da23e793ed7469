"""Before / after / ONNX Runtime, in one run: the comparison table of ``bench_model.py``.

Variants of one random-init model (seed 0), timed interleaved (one forward of each per
round, best of the rounds) on the same uint8 tile, post-processing included:

- ``before``: the deformable convs through grid_sample + matmul, BatchNorm unfolded (the
  CPU inference path before issue 15);
- ``prev``: BatchNorm folded, each deformable conv through the fused-gather path as it was
  before the shared-offset change (``deform_prev.py``; FSANet models only);
- ``after``: fused-gather deformable convs sharing their corners (SAGH's two convs),
  BatchNorm folded (what ``fsanet detect`` runs);
- ``ORT``: the model exported by ``fsanet export`` and run by ONNX Runtime (CPU, same
  thread count), when onnx and onnxruntime are installed.

torchvision's ``fcos_resnet50_fpn`` (random init, ``min_size = max_size = tile``) is the
reference for ``fsanet_r50``; ``fcos_r18_tiny`` (same body, plain FPN and FCOS head) is
the twin of ``fsanet_r18_tiny``.

The ratio table gives, per pair and variant, the median over the rounds of the per-round
ratio (the two models of a round ran back to back, so they saw about the same load) and
its range [min - max].
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import deform_prev
import torch

from fsanet_geo.model import build_model, deform, save_checkpoint
from fsanet_geo.model.files.fold_bn import fold_batchnorm

PAIRS = (("fsanet_r18_tiny", "fcos_r18_tiny"), ("fsanet_r50", "torchvision fcos_resnet50_fpn"))
TORCHVISION = "torchvision fcos_resnet50_fpn"


@contextlib.contextmanager
def per_conv_deform(path: Callable[..., torch.Tensor]) -> Iterator[None]:
    """Run each deformable conv on its own through ``path`` (no shared corners)."""
    saved = deform.deform_conv3x3_gather, deform.SharedOffsetDeform.forward
    deform.deform_conv3x3_gather = path  # type: ignore[assignment]
    deform.SharedOffsetDeform.forward = lambda self, convs, xs, offset: [  # type: ignore[method-assign]
        conv(x, offset) for conv, x in zip(convs, xs, strict=True)
    ]
    try:
        yield
    finally:
        deform.deform_conv3x3_gather, deform.SharedOffsetDeform.forward = saved  # type: ignore[method-assign]


def grid_sample_deform() -> contextlib.AbstractContextManager[None]:
    """Run the deformable convs through the grid-sample path (the ``before`` variant)."""
    return per_conv_deform(deform.deform_conv3x3_sampled)


def _onnx_runner(model: torch.nn.Module, folder: Path) -> Callable[[torch.Tensor], object] | None:
    try:
        from fsanet_geo.geo.detect.onnx_predictor import OnnxPredictor
        from fsanet_geo.model.files.onnx_export import export_onnx
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
        run = lambda tile: tv([tile.float() / 255])
        return {"before": run, "after": run}
    torch.manual_seed(0)
    before = build_model(name).eval()
    after = copy.deepcopy(before)
    fold_batchnorm(after)

    def run_before(tile: torch.Tensor) -> object:
        with grid_sample_deform():
            return before([tile])

    def run_prev(tile: torch.Tensor) -> object:
        with per_conv_deform(deform_prev.deform_conv3x3_gather):
            return after([tile])

    out: dict[str, Callable[[torch.Tensor], object]] = {"before": run_before}
    if name.startswith("fsanet"):
        out["prev"] = run_prev
    out["after"] = lambda tile: after([tile])
    ort = _onnx_runner(before, folder)
    if ort is not None:
        out["ORT"] = ort
    return out


def compare(size: int, repeats: int, pairs: Sequence[tuple[str, str]] = PAIRS) -> dict[str, dict[str, list[float]]]:
    """{model: {variant: ms per tile of each round}} for every model of ``pairs``, interleaved."""
    tile = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: _variants(name, size, Path(tmp)) for pair in pairs for name in pair}
        times: dict[str, dict[str, list[float]]] = {name: {label: [] for label in v} for name, v in runs.items()}
        with torch.inference_mode():
            for round_ in range(repeats + 1):  # round 0 warms up
                for model, reference in pairs:  # each pair back to back: the same load for both
                    for label in LABELS:
                        for name in (model, reference):
                            fn = runs[name].get(label)
                            if fn is None:
                                continue
                            start = time.perf_counter()
                            fn(tile)
                            if round_:
                                times[name][label].append(1000 * (time.perf_counter() - start))
    return times


LABELS = ("before", "prev", "after", "ORT")


def _ratio_cell(model: list[float], reference: list[float]) -> str:
    """Median of the per-round ratios and their range: ``1.52 [1.47-1.60]``."""
    ratios = [m / r for m, r in zip(model, reference, strict=True)]
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def print_comparison(size: int, repeats: int, models: Sequence[str] = ("fsanet_r18_tiny", "fsanet_r50")) -> None:
    """Print the before / prev / after / ORT table and the ratios of each pair of ``models`` (markdown)."""
    pairs = [pair for pair in PAIRS if pair[0] in models]
    times = compare(size, repeats, pairs)
    print(f"Before / prev / after / ONNX Runtime, CPU, {size}x{size} tile, {repeats} interleaved rounds:\n")
    print("| model | before ms | prev ms | after ms | ONNX Runtime ms | before / after |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in times.items():
        cells = [f"{min(row[k]):.0f}" if row.get(k) else "-" for k in LABELS]
        print(f"| {name} | {' | '.join(cells)} | {min(row['before']) / min(row['after']):.2f} |")
    print("\n(ms: best round.) Ratio, median of the rounds [min-max]:\n")
    print("| ratio | before | prev | after | ONNX Runtime |")
    print("|---|---:|---:|---:|---:|")
    for model, reference in pairs:
        cells = []
        for k in LABELS:
            ref = times[reference].get(k) or times[reference]["after"]
            cells.append(_ratio_cell(times[model][k], ref) if times[model].get(k) else "-")
        print(f"| {model} / {reference} | {' | '.join(cells)} |")
    print()
