"""One-command GPU check: deformable conv, detection fp32/fp16 against the CPU, throughput, training.

Usage (from the repository root, on a machine with a GPU; a few minutes)::

    python benchmarks/gpu_check.py                       # cuda, full size; JSON to benchmarks/results/
    python benchmarks/gpu_check.py --device cpu --quick  # CI-sized smoke run of every code path

Checks, each a row of the one printed table (and of the JSON written to ``--json``):

(a) ``deform``: torchvision's ``deform_conv2d`` on the device (its CUDA kernel) against this
    project's grid-sample path on the device and against the CPU fused-gather path: largest
    value and gradient differences (pass: <= 1e-3 on CUDA's float32, 1e-4 on CPU);
(b) ``detect``: the demo model (or ``--weights``) on the example scene (``--quick``: a 192 px
    crop) on the device in fp32 and with ``--half`` (CUDA only), each matched against the
    CPU result (same class, IoU >= 0.5, greedy by score): matched share (pass >= 99 %),
    largest and mean score difference;
(c) ``throughput``: tiles/s of every preset at 800 px (``--quick``: the two tiny ones at
    64 px) at batch 1, 8 and 16 (``--quick``: 1, 2), fp32 and fp16 autocast (CUDA), with the peak GPU memory;
(d) ``train``: 20 iterations of ``fsanet_r50`` at batch 8, 800 px, AMP (``--quick``:
    ``fsanet_r18_tiny``, 2 iterations, batch 2, 64 px; AMP only on CUDA): s / iteration,
    peak memory, and whether the losses stay finite.

Exit code 0 when every check passes, 1 otherwise. CUDA calls are documented torch APIs only
(``torch.cuda.synchronize``, ``reset_peak_memory_stats``, ``max_memory_allocated``,
``torch.autocast``, ``torch.amp.GradScaler``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import deform_conv2d

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "data" / "example_scene.tif"


@dataclass
class Check:
    """One row: ``check`` and ``setting`` name it, ``value`` is the figure, ``ok`` the verdict."""

    check: str
    setting: str
    value: str
    ok: bool | None = None
    data: dict = field(default_factory=dict)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ----------------------------------------------------------------------------- (a) deform
def check_deform(device: torch.device, quick: bool) -> list[Check]:
    from fsanet_geo.model.deform import deform_conv3x3_gather, deform_conv3x3_sampled

    b, c, h, w = (1, 16, 12, 10) if quick else (2, 256, 100, 100)
    gen = torch.Generator().manual_seed(0)
    x, offset = torch.randn(b, c, h, w, generator=gen), torch.randn(b, 72, h, w, generator=gen) * 3
    weight = torch.randn(c, c, 3, 3, generator=gen) * 0.05
    upstream = torch.randn(b, c, h, w, generator=gen)

    def run(fn, dev: torch.device) -> list[torch.Tensor]:  # noqa: ANN001 - out, then 3 gradients
        args = [t.detach().clone().to(dev).requires_grad_(True) for t in (x, offset, weight)]
        out = fn(*args)
        (out * upstream.to(dev)).sum().backward()
        return [t.detach().cpu() for t in (out, *(a.grad for a in args))]

    tv = run(lambda a, o, k: deform_conv2d(a, o, k, padding=(1, 1)), device)
    sampled = run(lambda a, o, k: deform_conv3x3_sampled(a, o, k, 4), device)
    cpu = run(lambda a, o, k: deform_conv3x3_gather(a, o, k, 4), torch.device("cpu"))
    tol = 1e-3 if device.type == "cuda" else 1e-4
    rows = []
    for label, ours in (("grid-sample on device", sampled), ("fused gathers on CPU", cpu)):
        diffs = [float((p - q).abs().max() / max(1.0, float(q.abs().max()))) for p, q in zip(ours, tv, strict=True)]
        rows.append(Check("deform", f"torchvision {device.type} vs {label}",
                          "max rel diff out {:.1e}, grads {:.1e} / {:.1e} / {:.1e}".format(*diffs),
                          max(diffs) <= tol, {"diffs": diffs, "tolerance": tol}))
    return rows


# ----------------------------------------------------------------------------- (b) detect
def crop(path: Path, size: int) -> Path:
    """A georeferenced size x size crop from the middle of the example scene."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(EXAMPLE) as src:
        window = Window((src.width - size) // 2, (src.height - size) // 2, size, size)
        profile = {**src.profile, "height": size, "width": size, "transform": src.window_transform(window),
                   "tiled": False}
        for key in ("blockxsize", "blockysize"):
            profile.pop(key, None)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return path


def _detect(scene: Path, weights: Path, device: str, half: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from fsanet_geo.geo.detect.detect_job import load_detector
    from fsanet_geo.geo.detect.pipeline import detect_scene
    from fsanet_geo.geo.settings import DetectSettings

    model = load_detector(weights, device)
    start = time.perf_counter()
    gdf = detect_scene(scene, model, settings=DetectSettings(device=device, half=half, batch_size=8))
    seconds = time.perf_counter() - start
    boxes = gdf[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
    return boxes, gdf["score"].to_numpy(np.float64), gdf["class_id"].to_numpy(np.int64), seconds


def match_share(ref, got) -> tuple[float, float, float]:  # noqa: ANN001
    """(matched share of the reference, max and mean score difference of the pairs)."""
    from fsanet_geo.evaluate.matching import match_pairs

    matched, diffs = 0, []
    for label in np.union1d(ref[2], got[2]):
        r, g = ref[2] == label, got[2] == label
        pairs = match_pairs(ref[0][r], ref[1][r], got[0][g], 0.5)
        keep = pairs >= 0
        matched += int(keep.sum())
        diffs += list(np.abs(ref[1][r][keep] - got[1][g][pairs[keep]]))
    share = matched / max(len(ref[1]), len(got[1]), 1)
    return share, float(max(diffs, default=0.0)), float(np.mean(diffs)) if diffs else 0.0


def check_detect(device: torch.device, quick: bool, weights: Path, folder: Path) -> list[Check]:
    scene = crop(folder / "crop.tif", 192) if quick else EXAMPLE
    reference = _detect(scene, weights, "cpu", False)
    rows = []
    for half in ([False, True] if device.type == "cuda" else [False]):
        got = _detect(scene, weights, str(device), half)
        share, worst, mean = match_share(reference, got)
        setting = f"{scene.name} on {device.type} {'fp16' if half else 'fp32'} vs CPU"
        value = (f"{len(got[1])} vs {len(reference[1])} objects, matched {100 * share:.2f} %, "
                 f"score diff max {worst:.1e} mean {mean:.1e}, {got[3]:.1f} s (CPU {reference[3]:.1f} s)")
        rows.append(Check("detect", setting, value, share >= 0.99,
                          {"objects": len(got[1]), "cpu_objects": len(reference[1]), "matched": share,
                           "score_diff_max": worst, "score_diff_mean": mean, "seconds": got[3],
                           "cpu_seconds": reference[3]}))
    return rows


# ----------------------------------------------------------------------------- (c) throughput
def check_throughput(device: torch.device, quick: bool) -> list[Check]:
    from fsanet_geo.model import build_model, list_presets
    from fsanet_geo.model.files.fold_bn import fold_batchnorm

    presets = ["fsanet_r18_tiny", "fcos_r18_tiny"] if quick else list_presets()
    batches, size, rounds = ((1, 2), 64, 1) if quick else ((1, 8, 16), 800, 5)
    rows = []
    for name in presets:
        torch.manual_seed(0)
        model = build_model(name).eval().to(device)
        fold_batchnorm(model)
        for half in ([False, True] if device.type == "cuda" else [False]):
            for batch in batches:
                tiles = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
                autocast = torch.autocast(device.type, dtype=torch.float16, enabled=half)
                reset_peak(device)
                with torch.inference_mode(), autocast:
                    model(tiles)  # warm-up
                    sync(device)
                    start = time.perf_counter()
                    for _ in range(rounds):
                        model(tiles)
                    sync(device)
                rate = rounds * batch / (time.perf_counter() - start)
                peak = peak_mb(device)
                setting = f"{name} {'fp16' if half else 'fp32'} batch {batch} {size} px"
                value = f"{rate:.1f} tiles/s" + (f", peak {peak:.0f} MiB" if peak is not None else "")
                rows.append(Check("throughput", setting, value, None, {"tiles_per_s": rate, "peak_mib": peak}))
        del model
    return rows


# ----------------------------------------------------------------------------- (d) train
def check_train(device: torch.device, quick: bool) -> list[Check]:
    from fsanet_geo.model import build_model

    name, iters, batch, size = ("fsanet_r18_tiny", 2, 2, 64) if quick else ("fsanet_r50", 20, 8, 800)
    amp = device.type == "cuda"
    torch.manual_seed(0)
    model = build_model(name).train().to(device)
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen).to(device)
    targets = []
    for _ in range(batch):
        xy = torch.rand(6, 2, generator=gen) * (size * 0.6)
        wh = torch.rand(6, 2, generator=gen) * (size * 0.3) + 4
        targets.append({"boxes": torch.cat((xy, xy + wh), 1).to(device),
                        "labels": torch.randint(0, 8, (6,), generator=gen).to(device)})
    reset_peak(device)
    finite = True
    start = 0.0
    for step in range(iters + 1):  # step 0 warms up
        if step == 1:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss = sum(model(images, targets).values())
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        finite &= bool(torch.isfinite(loss).item())
    sync(device)
    per_iter = (time.perf_counter() - start) / iters
    peak = peak_mb(device)
    value = f"{per_iter:.3f} s / iteration" + (f", peak {peak:.0f} MiB" if peak is not None else "")
    value += ", losses finite" if finite else ", NON-FINITE LOSS"
    setting = f"{name} batch {batch} {size} px, {iters} iterations{', AMP' if amp else ''}"
    return [Check("train", setting, value, finite, {"s_per_iter": per_iter, "peak_mib": peak})]


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--quick", action="store_true", help="CI-sized: tiny inputs, two presets, a scene crop")
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint or .onnx (default: the demo model)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the JSON "
                        "(default benchmarks/results/gpu_check_<device>.json)")
    parser.add_argument("--skip", default="", help="comma-separated checks to skip: deform,detect,throughput,train")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device (use --device cpu for the smoke run)",
              file=sys.stderr)
        return 2
    from fsanet_geo.geo.detect.detect_job import demo_weights_path

    weights = args.weights or demo_weights_path()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rows: list[Check] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "deform" not in skip:
            rows += check_deform(device, args.quick)
        if "detect" not in skip:
            rows += check_detect(device, args.quick, weights, Path(tmp))
        if "throughput" not in skip:
            rows += check_throughput(device, args.quick)
        if "train" not in skip:
            rows += check_train(device, args.quick)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    header = (f"# {platform.machine()}, torch {torch.__version__}, device {device} ({gpu}), "
              f"{'quick' if args.quick else 'full'} run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(header + "\n")
    print("| check | setting | value | pass |")
    print("|---|---|---|---|")
    for r in rows:
        verdict = "-" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"| {r.check} | {r.setting} | {r.value} | {verdict} |")
    out = args.json or ROOT / "benchmarks" / "results" / f"gpu_check_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"header": header, "gpu": gpu, "rows": [asdict(r) for r in rows]}, indent=2))
    print(f"\nwrote {out}")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
