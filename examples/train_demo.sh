#!/usr/bin/env bash
# Train the packaged demo model (fsanet_geo/weights/demo.safetensors) from nothing but the
# project's own synthetic generator, on a CPU. Run from anywhere, with the project's
# environment active (`fsanet` and `python` on PATH), or set FSANET= / PYTHON=:
#
#     bash examples/train_demo.sh            # about 6 h on 2 CPU cores
#     FROM_STAGE=6 bash examples/train_demo.sh   # reuse stages 1-5 in $WORK
#
# Goal: with `fsanet detect` at its defaults (800 px tiles), find the example scene's
# objects with recall >= 0.9 and precision >= 0.9 at IoU 0.5 (step 6 measures it).
#
# Six stages, each a plain `fsanet train` run of the preset fsanet_r18_tiny (P2-P4 at
# strides 4/8/16, trainable BN: no pretrained backbone is reachable here, and at stride 8
# objects under 8 px get no positive point), each on a fresh synthetic set and each from
# the previous stage's weights (--init-weights):
#   stage 1: from scratch, seed 2024, 640 images, 5 epochs = 750 iterations;
#   stage 2: seed 2025, 1664 images at density 2.0, 4 epochs = 1596 iterations, lr 1e-3;
#   stage 3: seed 2026, 1664 images at density 2.0, 4 epochs = 1596 iterations, lr 5e-4;
#   stage 4: seed 2027, 2560 images, the first 2 of 4 epochs = 1230 iterations at 5e-4;
#   stage 5: seed 2028, 2560 images, 4 epochs = 2460 iterations, lr 5e-4;
#   stage 6: the same as stage 5 on a fresh set (seed 2029).
# The shipped model came from exactly these commands on 2026-11-25/26 (2 CPU cores), with
# the library changing between stages as findings came in: stage 1 ran before the tiny
# presets had the nearest-point fallback (2-3 px objects between the stride-4 points get
# the nearest point as their positive), stages 2-6 had it, and only stages 5 and 6 had the
# per-object centerness targets (each object's best point learns centerness 1, so 2-4 px
# objects are not capped below the score threshold). Rerunning the script today trains
# every stage with both. Stage 4 was stopped after 2 of its 4 epochs to give stage 5 the
# time (--max-iters reproduces it). Stages were added one after the other as CPU time
# allowed; one 10000-iteration run would be the cleaner recipe and has not been tried.
#
# Budget reasoning (one training step costs about 0.5 s per 384 x 384 image on 2 cores,
# forward + backward):
#   * 384 px training images at their native 0.5 m-like pixel size (--input-size 384: no
#     resizing, objects keep the pixel sizes they have in the scene). Compute is per pixel,
#     so smaller images cost the same per object but give more optimiser steps per minute
#     than 800 px ones; 384 still holds the largest objects (64 px) whole.
#   * Object density: 2.5 per 100 x 100 px in stage 1 (more positives per pixel of
#     compute), 2.0 in stages 2-6 (closer to the scene's 1.5). The score threshold is chosen
#     afterwards on a validation scene (step 5), which undoes any calibration shift.
#   * Batch 4 (trainable BatchNorm wants more than 2); AdamW at 1e-3 (short runs from
#     scratch converge far faster with Adam than with the paper's SGD 0.002 recipe, which
#     assumes ImageNet weights and 12 AI-TOD epochs). The recipe's step schedule, scaled
#     to the run's epochs, divides the rate by 10 near the end. Stage 1 kept the recipe's
#     500-iteration warm-up (too long for 750 steps, in hindsight); stages 2-6 use 50.
#   * Flips both ways and quarter turns: overhead objects have no "up".
#   * One data-loader worker (PNG decoding is cheap; a second would steal a core).
set -euo pipefail
cd "$(dirname "$0")/.."

FSANET=${FSANET:-fsanet}
PYTHON=${PYTHON:-python}
WORK=${WORK:-work_dirs/demo}
MODEL=${MODEL:-fsanet_r18_tiny}
FROM_STAGE=${FROM_STAGE:-1}   # e.g. FROM_STAGE=3 reuses $WORK/train_1 and $WORK/train_2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
start=$SECONDS
mkdir -p "$WORK"

# stage N SEED IMAGES HELD_OUT DENSITY EPOCHS LR WARMUP [MAX_ITERS]: a synthetic
# AI-TOD-like set in AI-TOD's file layout (seed SEED, 384 px images, the fraction HELD_OUT
# as "test"), then `fsanet train` on its trainval split, from the previous stage's weights
# when N > 1, stopping after MAX_ITERS iterations when given (the schedule stays that of
# EPOCHS epochs).
stage() {
    local n=$1 seed=$2 images=$3 held_out=$4 density=$5 epochs=$6 lr=$7 warmup=$8
    if [ "$n" -lt "$FROM_STAGE" ]; then return; fi
    local init=() stop=()
    if [ "$n" -gt 1 ]; then init=(--init-weights "$WORK/train_$((n - 1))/last.safetensors"); fi
    if [ $# -ge 9 ]; then stop=(--max-iters "$9"); fi
    $FSANET data synth "$WORK/synth_$n" --images "$images" --size 384 --density "$density" \
        --test-fraction "$held_out" --seed "$seed" --overwrite
    $FSANET train --model "$MODEL" --dataset aitod --data-root "$WORK/synth_$n" "${init[@]}" \
        --input-size 384 --epochs "$epochs" --batch-size 4 --optimizer adamw --lr "$lr" \
        --warmup-iters "$warmup" --flip-v 0.5 --rot90 --workers 1 --device cpu --seed 0 \
        --val-interval "$epochs" --work-dir "$WORK/train_$n" "${stop[@]}" --overwrite
    echo "stage $n done after $((SECONDS - start)) s" >&2
}

# (1-3) The six training stages (see the header for what each is for).
stage 1 2024 640 0.0625 2.5 5 0.001 500    # from scratch, 750 iterations, ~30 min
stage 2 2025 1664 0.04 2.0 4 0.001 50       # 1596 iterations, ~55 min
stage 3 2026 1664 0.04 2.0 4 0.0005 50      # 1596 iterations, ~55 min
stage 4 2027 2560 0.04 2.0 4 0.0005 50 1230 # first 2 of 4 epochs (see header), ~42 min
stage 5 2028 2560 0.04 2.0 4 0.0005 50      # per-object centerness; 2460 iterations, ~85 min
stage 6 2029 2560 0.04 2.0 4 0.0005 50      # the same on a fresh set, ~80 min
LAST=6
FINAL="$WORK/train_$LAST/last.safetensors"

# AI-TOD-protocol metrics on the last stage's held-out synthetic test split (for the README).
$FSANET eval --weights "$FINAL" --dataset aitod --data-root "$WORK/synth_$LAST" \
    --split test --device cpu --json-file "$WORK/synth_test_metrics.json" --overwrite

# (4) A held-out validation SCENE (seed 8; the example scene is seed 7 and is never used
#     for choosing anything), detected with the raw checkpoint at 800 px tiles.
$PYTHON examples/make_example_scene.py --out "$WORK/val_scene" --seed 8 --overwrite
$FSANET detect "$WORK/val_scene/example_scene.tif" --weights "$FINAL" \
    -o "$WORK/val_detections.gpkg" --tile-size 800 --device cpu --overwrite

# (5) Pick the score threshold on the validation scene (IoU 0.5) by the goal itself: the
#     largest min(precision, recall), ties broken by F1 (the goal asks for both >= 0.9, so
#     the threshold that lifts the lesser of the two is the one to take). Then write
#     the demo checkpoint: same weights, that threshold as the model's score_thr and as
#     the soft-NMS floor (so decayed duplicates drop too), default tile 800 px (the net is
#     fully convolutional; the training images were 384 px of the same pixel size).
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
    table.append((min(o.precision, o.recall), o.f1, t, o.precision, o.recall))
    print(f"score >= {t:.2f}: precision {o.precision:.3f} recall {o.recall:.3f} F1 {o.f1:.3f}", file=sys.stderr)
_, _, thr, p, r = max(table)
print(f"chosen score threshold {thr:.2f} (validation scene: precision {p:.3f}, recall {r:.3f})", file=sys.stderr)
trained = load_model(sys.argv[2])
config = dataclasses.replace(trained.config, score_thr=float(thr), min_score=float(thr), input_size=800)
demo = FSANet(config)
demo.load_state_dict(trained.state_dict())
note = {"trained_on": "synthetic AI-TOD-like data (fsanet data synth, seeds 2024-2029), not real imagery",
        "command": "examples/train_demo.sh", "score_threshold_from": "validation scene, seed 8"}
save_checkpoint(demo, "fsanet_geo/weights/demo.safetensors", extra_metadata={"demo": json.dumps(note)})
EOF

# (6) The check that the README reports: the example scene with `fsanet detect` defaults.
$FSANET detect examples/data/example_scene.tif -o "$WORK/example_detections.gpkg" \
    --preview "$WORK/example_preview.png" --overwrite
$FSANET eval --truth examples/data/example_scene_truth.gpkg --detections "$WORK/example_detections.gpkg" \
    --json-file "$WORK/example_metrics.json" --overwrite

size=$(stat -c %s fsanet_geo/weights/demo.safetensors)
echo "demo.safetensors: $((size / 1000000)) MB; total time $((SECONDS - start)) s" >&2
if [ "$size" -gt 15000000 ]; then
    echo "error: the demo checkpoint is over 15 MB: use a lighter preset (MODEL=...)" >&2
    exit 1
fi
