#!/usr/bin/env bash
# Train the packaged demo model (fsanet_geo/weights/demo.safetensors) from nothing but the
# project's own synthetic generator, on a CPU. Run from anywhere, with the project's
# environment active (`fsanet` and `python` on PATH), or set FSANET= / PYTHON=:
#
#     bash examples/train_demo.sh            # about 25-35 minutes on 2 CPU cores
#
# Goal: with `fsanet detect` at its defaults (800 px tiles), find the example scene's
# objects with recall >= 0.9 and precision >= 0.9 at IoU 0.5 (step 6 measures it).
#
# Budget reasoning (measured: one training step of fsanet_r18_lite costs about 2.5-3
# CPU-seconds per 512 x 512 image, forward + backward, no pretrained backbone since
# nothing but PyPI is reachable; so about 1.5 s per image on 2 cores):
#   * 512 px training images at their native 0.5 m-like pixel size (--input-size 512: no
#     resizing, objects keep the pixel sizes they have in the scene). Compute is per pixel,
#     so smaller images cost the same per object but give more optimiser steps per minute
#     than 800 px ones; 512 still holds the largest objects (64 px) whole.
#   * --density 2.5 objects per 100 x 100 px (the scene has 1.5): more positives per
#     pixel of compute; the background is plentiful anyway. The score threshold is chosen
#     afterwards on a scene of the scene's density (step 5), which undoes any calibration
#     shift.
#   * 280 images (252 train, 28 held-out test) x 4 epochs = about 1000 image-steps
#     = about 25 min. Batch 2 gives 500 optimiser steps (more updates beat bigger batches
#     for a short run from scratch).
#   * AdamW at 1e-3 (short runs from scratch converge far faster with Adam than with the
#     paper's SGD 0.002 recipe, which assumes ImageNet weights and 12 AI-TOD epochs);
#     the recipe's 500-iteration linear warm-up ramps it from 1/3, and the schedule
#     scaled to 4 epochs divides it by 10 for the last epoch.
#   * Flips both ways and quarter turns: overhead objects have no "up".
#   * One data-loader worker (PNG decoding is cheap; a second would steal a core).
set -euo pipefail
cd "$(dirname "$0")/.."

FSANET=${FSANET:-fsanet}
PYTHON=${PYTHON:-python}
WORK=${WORK:-work_dirs/demo}
MODEL=${MODEL:-fsanet_r18_tiny}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
start=$SECONDS
mkdir -p "$WORK"

# (1) A synthetic AI-TOD-like data set in AI-TOD's file layout (seed 2024; ~1 min).
$FSANET data synth "$WORK/synth" --images 640 --size 384 --density 2.5 --test-fraction 0.0625 \
    --seed 2024 --overwrite

# (2) Train the light preset on the trainval split (~25 min on 2 cores); validates once,
#     after the last epoch, on the held-out test split.
$FSANET train --model "$MODEL" --dataset aitod --data-root "$WORK/synth" \
    --input-size 384 --epochs 5 --batch-size 4 --optimizer adamw --lr 0.001 \
    --flip-v 0.5 --rot90 --workers 1 --device cpu --seed 0 --val-interval 5 \
    --work-dir "$WORK/train" --overwrite
# (2b) Continue from those weights on a second, fresh synthetic set (seed 2025): more
#      distinct images for the same compute, a short warm-up (the first run's 500-iteration
#      warm-up took most of its schedule), 2 epochs: lr 1e-3 then 1e-4 (~10 min).
$FSANET data synth "$WORK/synth2" --images 640 --size 384 --density 2.5 --test-fraction 0.0625 \
    --seed 2025 --overwrite
$FSANET train --model "$MODEL" --dataset aitod --data-root "$WORK/synth2" \
    --init-weights "$WORK/train/last.safetensors" --warmup-iters 50 \
    --input-size 384 --epochs 2 --batch-size 4 --optimizer adamw --lr 0.001 \
    --flip-v 0.5 --rot90 --workers 1 --device cpu --seed 1 --val-interval 0 \
    --work-dir "$WORK/train2" --overwrite
FINAL="$WORK/train2/last.safetensors"
echo "training done after $((SECONDS - start)) s" >&2

# (3) AI-TOD-protocol metrics on the held-out synthetic test split (for the README).
$FSANET eval --weights "$FINAL" --dataset aitod --data-root "$WORK/synth" \
    --split test --device cpu --json "$WORK/synth_test_metrics.json" --overwrite

# (4) A held-out validation SCENE (seed 8; the example scene is seed 7 and is never used
#     for choosing anything), detected with the raw checkpoint at 800 px tiles.
$PYTHON examples/make_example_scene.py --out "$WORK/val_scene" --seed 8 --overwrite
$FSANET detect "$WORK/val_scene/example_scene.tif" --weights "$FINAL" \
    -o "$WORK/val_detections.gpkg" --tile-size 800 --device cpu --overwrite

# (5) Pick the score threshold with the best F1 (IoU 0.5) on the validation scene and write
#     the demo checkpoint: same weights, that threshold as the model's score_thr and as
#     the soft-NMS floor (so decayed duplicates drop too), default tile 800 px (the net is
#     fully convolutional; the training crops were 512 px of the same pixel size).
mkdir -p fsanet_geo/weights
$PYTHON - "$WORK" "$FINAL" <<'EOF'
import dataclasses, json, sys
from pathlib import Path

import numpy as np

from fsanet_geo.evaluate.mapspace import evaluate_vectors
from fsanet_geo.model import FSANet, load_model, save_checkpoint

work = Path(sys.argv[1])
truth, dets = work / "val_scene/example_scene_truth.gpkg", work / "val_detections.gpkg"
table = []
for t in np.round(np.arange(0.05, 0.951, 0.05), 2):
    o = evaluate_vectors(truth, dets, iou=0.5, score_threshold=float(t)).overall
    table.append((o.f1, -t, t, o.precision, o.recall))
    print(f"score >= {t:.2f}: precision {o.precision:.3f} recall {o.recall:.3f} F1 {o.f1:.3f}", file=sys.stderr)
f1, _, thr, p, r = max(table)
print(f"chosen score threshold {thr:.2f} (validation scene: precision {p:.3f}, recall {r:.3f})", file=sys.stderr)
trained = load_model(sys.argv[2])
config = dataclasses.replace(trained.config, score_thr=float(thr), min_score=float(thr), input_size=800)
demo = FSANet(config)
demo.load_state_dict(trained.state_dict())
note = {"trained_on": "synthetic AI-TOD-like data (fsanet data synth --seed 2024, then --seed 2025), not real imagery",
        "command": "examples/train_demo.sh", "score_threshold_from": "validation scene, seed 8"}
save_checkpoint(demo, "fsanet_geo/weights/demo.safetensors", extra_metadata={"demo": json.dumps(note)})
EOF

# (6) The check that the README reports: the example scene with `fsanet detect` defaults.
$FSANET detect examples/data/example_scene.tif -o "$WORK/example_detections.gpkg" \
    --preview "$WORK/example_preview.png" --overwrite
$FSANET eval --truth examples/data/example_scene_truth.gpkg --detections "$WORK/example_detections.gpkg" \
    --json "$WORK/example_metrics.json" --overwrite

size=$(stat -c %s fsanet_geo/weights/demo.safetensors)
echo "demo.safetensors: $((size / 1000000)) MB; total time $((SECONDS - start)) s" >&2
if [ "$size" -gt 15000000 ]; then
    echo "error: the demo checkpoint is over 15 MB: use a lighter preset (MODEL=...)" >&2
    exit 1
fi
