"""Model benchmark: parameters, GFLOPs and forward time per 800x800 tile for each preset.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_model.py                      # every preset, CPU (+ CUDA if present)
    .venv/bin/python benchmarks/bench_model.py --presets fsanet_r18_lite,fcos_r18_lite --repeats 3
    .venv/bin/python benchmarks/bench_model.py --no-table --repeats 3   # before/after/ONNX + one deform conv

Columns:
- params (M): all parameters, frozen ones included;
- GFLOPs: counted by ``torch.utils.flop_counter.FlopCounterMode`` on the network
  (backbone, neck, head) for one 800x800 image, 2 FLOPs per multiply-add (divide by 2 for
  the "GMACs" many papers call FLOPs). Counting runs on the meta device (no compute),
  where the deformable convs take the grid-sample + matmul path: their matmul, the same
  multiply-adds as torchvision's kernel (which the counter cannot see), is counted, the
  bilinear sampling is not;
- CPU ms / CUDA ms: best (minimum) wall time of ``model([tile])`` over the repeats (the
  machine is shared; the minimum is the least disturbed figure) in eval mode (inference mode,
  uint8 800x800 tile, random init, BatchNorm folded, post-processing included);
- deform %: share of that time spent in the SAGH head's two deformable convs (all levels).

It also times torchvision's own ``fcos_resnet50_fpn`` as a reference for the machine's
state, and one deformable conv (256 -> 256 channels, 3x3, 4 deform groups, 100x100,
the P3 size of an 800x800 tile) with torchvision's kernel, this project's two CPU paths and
a dense 3x3 conv of the same shape.

``--compare`` (default on) times, in the same run and interleaved, the CPU inference
``before`` (grid-sample deformable conv, BatchNorm unfolded: the code before issue 15),
``prev`` (each deformable conv through the gather path as it was before the convs shared
their corners, ``deform_prev.py``) and ``after`` (shared-corner gather path, BatchNorm
folded, as ``fsanet detect`` loads a checkpoint) of ``fsanet_r18_tiny`` with its FCOS twin
``fcos_r18_tiny`` and of ``fsanet_r50`` with torchvision's ``fcos_resnet50_fpn``
(``--compare-pairs``), plus the same models exported to ONNX and run by ONNX Runtime (when
the ``[onnx]`` extra is installed), and prints the median of the per-round ratios with
their range. The micro-benchmarks end with SAGH's two 96-channel convs at the tiny
preset's P2 (200x200) against two dense convs. Run with ``PYTHONPATH=.:benchmarks``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import deform_prev
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from torchvision.ops import deform_conv2d

from fsanet_geo.model import FSANet, build_model, list_presets
from fsanet_geo.model.deform import (
    deform_conv3x3_gather,
    deform_conv3x3_gather_shared,
    deform_conv3x3_sampled,
)
from fsanet_geo.model.files.fold_bn import fold_batchnorm
from fsanet_geo.model.head import AlignHead
from fsanet_geo.model.presets import count_parameters


@dataclass
class Row:
    preset: str
    params_m: float
    gflops: float
    cpu_ms: float
    cpu_deform_share: float | None
    cuda_ms: float | None = None
    cuda_deform_share: float | None = None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_gflops(name: str, size: int) -> float:
    """Network GFLOPs for one size x size image (meta device: no compute, no memory)."""
    with torch.device("meta"):
        model = build_model(name).eval()
        batch = torch.empty(1, 3, size, size)
    with FlopCounterMode(display=False) as counter:
        model.forward_features(batch)
    return counter.get_total_flops() / 1e9


class DeformTimer:
    """Accumulates the wall time spent inside the head's deformable convs."""

    def __init__(self, model: FSANet, device: torch.device) -> None:
        self.total = 0.0
        self._start = 0.0
        self._handles = []
        head = model.head
        if isinstance(head, AlignHead):  # the two convs run inside the shared-offset module
            self._handles.append(head.shared_deform.register_forward_pre_hook(self._pre(device)))
            self._handles.append(head.shared_deform.register_forward_hook(self._post(device)))

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def _pre(self, device: torch.device) -> Callable[..., None]:
        def hook(*_: object) -> None:
            _sync(device)
            self._start = time.perf_counter()

        return hook

    def _post(self, device: torch.device) -> Callable[..., None]:
        def hook(*_: object) -> None:
            _sync(device)
            self.total += time.perf_counter() - self._start

        return hook


def time_forward(name: str, size: int, repeats: int, device: torch.device) -> tuple[float, float | None]:
    """(best ms per tile, share of time in the deformable convs in that run, or None)."""
    torch.manual_seed(0)
    model = build_model(name).eval().to(device)
    fold_batchnorm(model)  # as fsanet detect loads a checkpoint
    tile = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, device=device)
    timer = DeformTimer(model, device)
    times, shares = [], []
    with torch.inference_mode():
        model([tile])  # warm-up
        for _ in range(repeats):
            timer.total = 0.0
            _sync(device)
            start = time.perf_counter()
            model([tile])
            _sync(device)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            shares.append(timer.total / elapsed)
    best = min(range(len(times)), key=times.__getitem__)
    return 1000 * times[best], (shares[best] if timer.active else None)


def tiny_pair_micro(repeats: int) -> dict[str, list[float]]:
    """ms per round of SAGH's two 96->96 deformable convs (4 groups, one offset map) at
    ``fsanet_r18_tiny``'s P2 (200x200, channels-last), interleaved: shared corners, each
    conv on its own (the path before the change), and two dense 3x3 convs."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(1, 96, 200, 200, generator=gen).contiguous(memory_format=torch.channels_last) for _ in "ab"]
    offset = (torch.randn(1, 72, 200, 200, generator=gen) * 3).contiguous(memory_format=torch.channels_last)
    weights = [torch.randn(96, 96, 3, 3, generator=gen) * 0.01 for _ in "ab"]
    cases: dict[str, Callable[[], object]] = {
        "two dense conv2d 3x3": lambda: [F.conv2d(x, k, padding=1) for x, k in zip(xs, weights, strict=True)],
        "two convs, each on its own (prev)": lambda: [
            deform_prev.deform_conv3x3_gather(x, offset, k, 4) for x, k in zip(xs, weights, strict=True)],
        "two convs, shared corners (after)": lambda: deform_conv3x3_gather_shared(xs, offset, weights, 4),
    }
    out: dict[str, list[float]] = {label: [] for label in cases}
    with torch.inference_mode():
        for round_ in range(repeats + 1):
            for label, fn in cases.items():
                start = time.perf_counter()
                fn()
                if round_:
                    out[label].append(1000 * (time.perf_counter() - start))
    return out


def deform_micro(repeats: int) -> dict[str, float]:
    """ms of one 256->256 3x3 deformable conv (4 groups) on 100x100, CPU, three ways."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 100, 100, generator=gen)
    offset = torch.randn(1, 72, 100, 100, generator=gen)
    weight = torch.randn(256, 256, 3, 3, generator=gen) * 0.01
    cases: dict[str, Callable[[], torch.Tensor]] = {
        "torchvision deform_conv2d": lambda: deform_conv2d(x, offset, weight, padding=(1, 1)),
        "fsanet_geo grid_sample + matmul (before)": lambda: deform_conv3x3_sampled(x, offset, weight, 4),
        "fsanet_geo fused gathers + GEMM (after)": lambda: deform_conv3x3_gather(x, offset, weight, 4),
        "dense conv2d 3x3": lambda: F.conv2d(x, weight, padding=1),
    }
    out = {}
    with torch.inference_mode():
        for label, fn in cases.items():
            fn()
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            out[label] = 1000 * min(samples)
    return out


def torchvision_fcos_ms(size: int, repeats: int) -> float:
    """ms per tile of torchvision's own FCOS-R50 (P3-P7), the load/machine reference."""
    from torchvision.models.detection import fcos_resnet50_fpn

    model = fcos_resnet50_fpn(weights=None, weights_backbone=None, min_size=size, max_size=size).eval()
    tile = [torch.rand(3, size, size)]
    samples = []
    with torch.inference_mode():
        model(tile)
        for _ in range(repeats):
            start = time.perf_counter()
            model(tile)
            samples.append(time.perf_counter() - start)
    return 1000 * min(samples)


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(list_presets()), help="comma-separated preset names")
    parser.add_argument("--size", type=int, default=800, help="tile side in pixels (default 800)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per preset (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    parser.add_argument("--no-cuda", action="store_true", help="skip CUDA timings even when available")
    parser.add_argument("--no-micro", action="store_true", help="skip the single deformable-conv timing")
    parser.add_argument("--no-reference", action="store_true", help="skip torchvision's FCOS-R50 reference timing")
    parser.add_argument("--no-table", action="store_true", help="skip the per-preset table")
    parser.add_argument("--no-compare", action="store_true", help="skip the before/after/ONNX comparison")
    parser.add_argument("--compare-pairs", default="fsanet_r18_tiny,fsanet_r50",
                        help="comma-separated FSANet models of the comparison (with their FCOS references)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(list_presets()))
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; choose from {', '.join(list_presets())}")
    use_cuda = torch.cuda.is_available() and not args.no_cuda

    print(f"# {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({args.threads} threads), "
          f"CUDA: {torch.cuda.get_device_name(0) if use_cuda else 'none'}")
    print(f"# tile {args.size}x{args.size}, {args.repeats} timed forwards after 1 warm-up, best\n")
    if not args.no_compare:
        from bench_compare import print_comparison

        print_comparison(args.size, args.repeats, [n.strip() for n in args.compare_pairs.split(",") if n.strip()])
    if args.no_table:
        names = []
    rows = []
    for name in names:
        model = build_model(name)
        row = Row(name, count_parameters(model) / 1e6, count_gflops(name, args.size), *time_forward(
            name, args.size, args.repeats, torch.device("cpu")))
        if use_cuda:
            row.cuda_ms, row.cuda_deform_share = time_forward(name, args.size, max(args.repeats, 5), torch.device("cuda"))
        rows.append(row)
        print(f"  done {name}", flush=True)
    if rows:
        print_table(rows, use_cuda)
    if not args.no_reference and not args.no_table:
        ms = torchvision_fcos_ms(args.size, args.repeats)
        print(f"\nReference: torchvision fcos_resnet50_fpn (P3-P7), CPU: {ms:.0f} ms / tile")
    if not args.no_micro:
        print("\nOne deformable conv, 256 -> 256, 3x3, 4 deform groups, 100x100, CPU:\n")
        micro = deform_micro(max(args.repeats, 3))
        dense = micro["dense conv2d 3x3"]
        print("| implementation | ms | x dense conv |")
        print("|---|---:|---:|")
        for label, ms in micro.items():
            print(f"| {label} | {ms:.0f} | {ms / dense:.2f} |")
        print("\nSAGH's two deformable convs at fsanet_r18_tiny's P2: 96 -> 96, 4 groups, 200x200, CPU,")
        print("one offset map; ms best round, x two dense convs: median of the rounds [min-max]:\n")
        pair = tiny_pair_micro(max(args.repeats, 3))
        dense_ms = pair["two dense conv2d 3x3"]
        print("| implementation | ms | x two dense convs |")
        print("|---|---:|---:|")
        for label, ms in pair.items():
            ratios = [a / b for a, b in zip(ms, dense_ms, strict=True)]
            print(f"| {label} | {min(ms):.0f} | {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}] |")


def print_table(rows: list[Row], use_cuda: bool) -> None:
    """The per-preset markdown table."""
    print()
    header = "| preset | params (M) | GFLOPs | CPU ms / tile | deform % (CPU) |"
    rule = "|---|---:|---:|---:|---:|"
    if use_cuda:
        header += " CUDA ms / tile | deform % (CUDA) |"
        rule += "---:|---:|"
    print(header)
    print(rule)
    for r in rows:
        line = (f"| {r.preset} | {r.params_m:.2f} | {r.gflops:.1f} | {r.cpu_ms:.0f} | "
                f"{_fmt(r.cpu_deform_share and 100 * r.cpu_deform_share, '{:.0f}')} |")
        if use_cuda:
            line += (f" {_fmt(r.cuda_ms, '{:.1f}')} | "
                     f"{_fmt(r.cuda_deform_share and 100 * r.cuda_deform_share, '{:.0f}')} |")
        print(line)


if __name__ == "__main__":
    main()
