"""Ablation on the synthetic AI-TOD-like set: FCOS, FCOS+FA2M, FCOS+SAGH and FSANet.

The four ResNet-18 "lite" presets share the backbone, widths, data, schedule and budget;
only the neck (FPN vs FA2M AlignFPN) and the head (FCOS vs SAGH) differ. Everything runs
on CPU from random initialisation (no ImageNet weights offline), so absolute APs are low;
the comparison is what matters. Reports AP, AP50, APvt, APt (AI-TOD protocol, in %) on
the held-out test split, and the training speed in images/s.

Reproduce (about 20 minutes on 2 CPU cores with nothing else running; 48 training
images of 256 x 256 px, 30 epochs = 360 iterations of 4 images per model):

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_ablation.py \
        --out benchmarks/results/ablation.json

A quick dry run of the whole pipeline (a minute):

    .venv/bin/python benchmarks/bench_ablation.py --images 8 --size 128 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

PRESETS = ("fcos_r18_lite", "fcos_fa2m_r18_lite", "fcos_sagh_r18_lite", "fsanet_r18_lite")
LABELS = {
    "fcos_r18_lite": "FCOS",
    "fcos_fa2m_r18_lite": "FCOS + FA2M",
    "fcos_sagh_r18_lite": "FCOS + SAGH",
    "fsanet_r18_lite": "FSANet (FA2M + SAGH)",
    "fcos_r18_tiny": "FCOS (tiny body)",
    "fcos_fa2m_r18_tiny": "FCOS + FA2M (tiny body)",
    "fcos_sagh_r18_tiny": "FCOS + SAGH (tiny body)",
    "fsanet_r18_tiny": "FSANet (tiny body)",
}
CACHE = Path(tempfile.gettempdir()) / "fsanet_bench_cache"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=64, help="synthetic images in all (25%% test)")
    p.add_argument("--size", type=int, default=256, help="image and training size, pixels")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (random init)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--warmup-iters", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    p.add_argument("--data", type=Path, default=None, help="an existing AI-TOD-layout tree to use")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--keep", type=Path, default=None, help="keep the work dirs under this folder")
    return p.parse_args(argv)


def synthetic_set(images: int, size: int, seed: int) -> Path:
    """The cached synthetic tree for these settings (generated once, deterministic)."""
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    root = CACHE / f"synth_n{images}_s{size}_seed{seed}"
    if not root.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        generate_synthetic_aitod(root, images, seed=seed, size=size, test_fraction=0.25)
    return root


def run_one(preset: str, data: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train one preset, then score its last checkpoint on the test split."""
    from fsanet_geo.data.dataset import build_dataset
    from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
    from fsanet_geo.evaluate.predict import predict_dataset
    from fsanet_geo.model.files.checkpoint import load_model
    from fsanet_geo.train.config import TrainConfig
    from fsanet_geo.train.engine import train

    steps = tuple(sorted({max(1, round(args.epochs * 8 / 12)), max(1, round(args.epochs * 11 / 12))}))
    config = TrainConfig.for_preset(
        preset, dataset="aitod", data_root=str(data), epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, warmup_iters=args.warmup_iters, lr_steps=steps, input_size=args.size,
        num_workers=0, device="cpu", val_interval=0, seed=args.seed, work_dir=str(work),
        allow_frozen_norm_from_scratch=True,  # the recorded lite results were trained so
    )

    def progress(event: Any) -> None:
        if event.kind == "iter" and event.epoch_iter == event.iters_per_epoch:
            print(f"  {preset} epoch {event.epoch}/{event.epochs} loss {event.losses['loss']:.3f} "
                  f"{event.images_per_s:.2f} img/s", file=sys.stderr, flush=True)

    result = train(config, progress=progress)
    model = load_model(result.last_checkpoint, "cpu")
    test_set = build_dataset("aitod", data_root=data, split="test", train=False, input_size=args.size)
    started = time.perf_counter()
    detections = predict_dataset(model, test_set, batch_size=args.batch_size, device="cpu")
    infer_s = time.perf_counter() - started
    stats = evaluate_coco(test_set.coco, detections).stats
    return {
        "preset": preset,
        "model": LABELS.get(preset, preset),
        **{k: 100.0 * stats[k] if stats[k] >= 0 else None for k in ("AP", "AP50", "APvt", "APt")},
        "train_images_per_s": result.images_per_s,
        "train_seconds": result.seconds,
        "test_images_per_s": len(test_set) / infer_s,
        "iterations": result.iterations,
        "final_loss": result.final_losses.get("loss"),
        "detections": len(detections),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the results."""
    def cell(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = ["| model | AP | AP50 | APvt | APt | train img/s |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {cell(r['AP'])} | {cell(r['AP50'])} | {cell(r['APvt'])} | "
                     f"{cell(r['APt'])} | {r['train_images_per_s']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = args.data or synthetic_set(args.images, args.size, args.seed)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fsanet_ablation_") as tmp:
        base = args.keep or Path(tmp)
        for preset in presets:
            print(f"training {preset} ...", file=sys.stderr, flush=True)
            rows.append(run_one(preset, data, base / preset, args))
    command = "python benchmarks/bench_ablation.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(table(rows))
    print(f"\nsynthetic set: {data.name}; {args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr}, "
          f"CPU {args.threads} threads, torch {torch.__version__}\nreproduce: {command.strip()}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        args.out.write_text(json.dumps({"settings": settings, "command": command.strip(), "results": rows},
                                       indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
