#!/usr/bin/env bash
# Train the packaged demo model (fsanet_geo/weights/demo.safetensors) from nothing but the
# project's own synthetic generator, on a CPU. Run from anywhere, with the project's
# environment active (`fsanet` and `python` on PATH), or set FSANET= / PYTHON=:
#
#     bash examples/train_demo.sh            # about 36 minutes on 2 CPU cores
#
# Goal: with `fsanet detect` at its defaults (800 px tiles), find the example scene's
# objects with recall >= 0.9 and precision >= 0.9 at IoU 0.5 (step 6 measures it).
#
# The shipped demo model came from exactly this script (2026-11-25, 2 shared CPU cores,
# 2149 s in all). Preset: fsanet_r18_tiny (P2-P4 at strides 4/8/16, trainable BN: no
# pretrained backbone is reachable here, and at stride 8 objects under 8 px get no
# positive point). A continuation on a second synthetic set (`fsanet train --init-weights`,
# 300 more iterations) was tried and not kept: on the example scene it traded recall
# (0.56 -> 0.52) for precision (0.79 -> 0.88) at the same F1 (0.65) and lower AP.
#
# Budget reasoning (one training step costs about 0.5-0.8 s per 384 x 384 image on 2
# cores, forward + backward):
#   * 384 px training images at their native 0.5 m-like pixel size (--input-size 384: no
#     resizing, objects keep the pixel sizes they have in the scene). Compute is per pixel,
#     so smaller images cost the same per object but give more optimiser steps per minute
#     than 800 px ones; 384 still holds the largest objects (64 px) whole.
#   * --density 2.5 objects per 100 x 100 px (the scene has 1.5): more positives per
#     pixel of compute; the background is plentiful anyway. The score threshold is chosen
#     afterwards on a scene of the scene's density (step 5), which undoes any calibration
#     shift.
#   * 640 images (600 train, 40 held-out test) x 5 epochs = 3000 image-steps, batch 4
#     (trainable BatchNorm wants more than 2) = 750 optimiser steps, about 30 min.
#   * AdamW at 1e-3 (short runs from scratch converge far faster with Adam than with the
#     paper's SGD 0.002 recipe, which assumes ImageNet weights and 12 AI-TOD epochs);
#     the recipe's 500-iteration linear warm-up ramps it from 1/3 (in hindsight too long
#     for 750 steps: `--warmup-iters 50` is the better choice), and the schedule scaled
#     to 5 epochs divides it by 10 for the last two.
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
echo "training done after $((SECONDS - start)) s" >&2

# (3) AI-TOD-protocol metrics on the held-out synthetic test split (for the README).
$FSANET eval --weights "$WORK/train/last.safetensors" --dataset aitod --data-root "$WORK/synth" \
    --split test --device cpu --json "$WORK/synth_test_metrics.json" --overwrite

# (4) A held-out validation SCENE (seed 8; the example scene is seed 7 and is never used
#     for choosing anything), detected with the raw checkpoint at 800 px tiles.
$PYTHON examples/make_example_scene.py --out "$WORK/val_scene" --seed 8 --overwrite
$FSANET detect "$WORK/val_scene/example_scene.tif" --weights "$WORK/train/last.safetensors" \
    -o "$WORK/val_detections.gpkg" --tile-size 800 --device cpu --overwrite

# (5) Pick the score threshold with the best F1 (IoU 0.5) on the validation scene and write
#     the demo checkpoint: same weights, that threshold as the model's score_thr and as
#     the soft-NMS floor (so decayed duplicates drop too), default tile 800 px (the net is
#     fully convolutional; the training crops were 512 px of the same pixel size).
mkdir -p fsanet_geo/weights
$PYTHON - "$WORK" <<'EOF'
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
trained = load_model(work / "train/last.safetensors")
config = dataclasses.replace(trained.config, score_thr=float(thr), min_score=float(thr), input_size=800)
demo = FSANet(config)
demo.load_state_dict(trained.state_dict())
note = {"trained_on": "synthetic AI-TOD-like data (fsanet data synth --seed 2024), not real imagery",
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
