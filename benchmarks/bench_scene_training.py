"""Train on a GeoTIFF + vector labels from scratch and detect a held-out block (issue 14).

A synthetic scene (the project's renderer, the demo model's training generator) is written
as a UTM GeoTIFF with its objects as polygons in EPSG:4326
(:func:`fsanet_geo.synth.labelled_scene.make_labelled_scene`); its bottom-right block is
held out (``--val-aoi``). ``fsanet train --scene --labels`` trains a from-scratch preset on
the rest, then ``fsanet detect --aoi`` runs the best checkpoint over the held-out block, and
the detections are matched to the block's truth at IoU 0.5. Prints a markdown table.

    PYTHONPATH=. python benchmarks/bench_scene_training.py [--size 1536] [--holdout 512] [--iters 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

from fsanet_geo.evaluate.matching import match_boxes
from fsanet_geo.synth.labelled_scene import LabelledScene, make_labelled_scene

REPO = Path(__file__).resolve().parents[1]


def fsanet(*args: str) -> str:
    """Run ``fsanet ARGS`` (this checkout) and return its stderr+stdout; fail loudly."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "fsanet_cli.main", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"fsanet {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def holdout_scores(scene: LabelledScene, detections: Path, score_thr: float) -> dict[str, float]:
    """Recall and precision at IoU 0.5 of the detections (centre in the block) against the
    truth objects whose centre lies in the held-out block (scene pixels)."""
    col, row, w, h = scene.holdout_window
    b = scene.boxes
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    truth = b[(cx >= col) & (cx < col + w) & (cy >= row) & (cy < row + h)]
    frame = gpd.read_file(detections)
    frame = frame[frame["score"] >= score_thr]
    dt = frame[["x_min", "y_min", "x_max", "y_max"]].to_numpy(np.float64)
    matched = match_boxes(dt, frame["score"].to_numpy(np.float64), truth, 0.5)
    tp = int(matched.sum())
    return {"truth": len(truth), "detections": len(dt), "recall": tp / max(len(truth), 1),
            "precision": tp / max(len(dt), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1536)
    parser.add_argument("--holdout", type=int, default=512)
    parser.add_argument("--density", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--classes", default="vehicle")
    parser.add_argument("--model", default="fsanet_r18_tiny")
    parser.add_argument("--chip", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--score-thr", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    parser.add_argument("--init-weights", type=Path, default=None,
                        help="fine-tune from this checkpoint (e.g. fsanet_geo/weights/demo.safetensors)")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fsanet-scene-"))
    scene = make_labelled_scene(work, size=args.size, holdout=args.holdout, density=args.density, seed=args.seed,
                                classes=tuple(args.classes.split(",")), overwrite=True)
    run = work / "run"
    started = time.perf_counter()
    fsanet("train", "--scene", str(scene.image), "--labels", str(scene.labels), "--class-field", "class",
           "--val-aoi", str(scene.holdout), "--model", args.model, "--input-size", str(args.chip),
           "--batch-size", str(args.batch), "--optimizer", "adamw", "--lr", "1e-3", "--warmup-iters", "20",
           "--max-iters", str(args.iters), "--epochs", "1000", "--val-interval", "1000", "--rot90", "--flip-v", "0.5",
           "--workers", "1", "--work-dir", str(run), "--overwrite",
           *(["--init-weights", str(args.init_weights)] if args.init_weights else []))
    train_s = time.perf_counter() - started
    vals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"val"' in line]
    det = work / "holdout.gpkg"
    fsanet("detect", str(scene.image), "--weights", str(run / "last.safetensors"), "--aoi", str(scene.holdout),
           "--score-thr", str(min(args.score_thr)), "-o", str(det), "--overwrite")
    how = f"fine-tuned from {args.init_weights}" if args.init_weights else "from scratch"
    init = f" --init-weights {args.init_weights}" if args.init_weights else ""
    print(f"\n{args.size} px scene, {len(scene.boxes)} objects ({args.classes}), held-out block {args.holdout} px; "
          f"{args.model} {how}, {args.iters} iterations of {args.batch} x {args.chip} px chips, "
          f"{train_s / 60:.1f} min ({train_s / args.iters:.2f} s/iteration)")
    if vals:
        print(f"validation on the block (AI-TOD): AP {100 * vals[-1]['AP']:.1f}, AP50 {100 * vals[-1]['AP50']:.1f}")
    print("\n| score >= | truth | detections | recall | precision |\n|---:|---:|---:|---:|---:|")
    for thr in args.score_thr:
        s = holdout_scores(scene, det, thr)
        print(f"| {thr:g} | {s['truth']} | {s['detections']} | {s['recall']:.3f} | {s['precision']:.3f} |")
    print(f"\ncommand: PYTHONPATH=. python benchmarks/bench_scene_training.py --size {args.size} "
          f"--holdout {args.holdout}{init} --density {args.density:g} --seed {args.seed} --iters {args.iters} "
          f"--chip {args.chip} --batch {args.batch}")


if __name__ == "__main__":
    main()
