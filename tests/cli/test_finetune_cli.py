"""`fsanet train --init-weights demo.safetensors` on a COCO set of other classes, without --model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from fsanet_cli.main import app

runner = CliRunner()
DEMO = Path(__file__).resolve().parents[2] / "fsanet_geo" / "weights" / "demo.safetensors"


def write_coco(folder: Path) -> tuple[Path, Path]:
    """Two 64 x 64 images with a 'vehicle' (category 1) and a 'boat' (category 2) each."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    entries, annotations = [], []
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(images / f"{i}.png")
        entries.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 64})
        for cat, x in ((1, 10), (2, 40)):
            annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": cat,
                                "bbox": [x, 20, 8, 6], "area": 48, "iscrowd": 0})
    ann = folder / "train.json"
    categories = [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "boat"}]
    ann.write_text(json.dumps({"images": entries, "annotations": annotations, "categories": categories}))
    return ann, images


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_fine_tune_the_demo_to_other_classes_without_model(tmp_path: Path) -> None:
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config, read_checkpoint_metadata

    ann, images = write_coco(tmp_path / "coco")
    work = tmp_path / "run"
    common = ["--device", "cpu", "--workers", "0", "--val-interval", "0", "--work-dir", work]
    res = invoke("train", "--dataset", "coco", "--ann", ann, "--images", images, "--init-weights", DEMO,
                 "--batch-size", "1", "--input-size", "64", "--max-iters", "1", *common)
    assert res.exit_code == 0, res.output
    line = (f"note: fine-tuning from {DEMO} (fsanet_r18_tiny): kept vehicle; new: boat; dropped 7 classes: "
            "airplane, bridge, storage-tank, ship, swimming-pool, person, wind-mill")
    assert line in " ".join(res.stderr.split())  # rich may wrap the line on a narrow console
    config = read_checkpoint_config(work / "last.safetensors")
    assert (config.preset, config.class_names, config.input_size) == ("fsanet_r18_tiny", ("vehicle", "boat"), 64)
    recorded = json.loads(read_checkpoint_metadata(work / "last.safetensors")["fine_tuned_from"])
    assert (recorded["kept"], recorded["new"], len(recorded["dropped"])) == (["vehicle"], ["boat"], 7)
    first = json.loads((work / "metrics.jsonl").read_text().splitlines()[0])
    assert (first["type"], first["kept"], first["new"]) == ("init_weights", ["vehicle"], ["boat"])
    assert json.loads((work / "config.json").read_text())["model"] == "fsanet_r18_tiny"

    more = invoke("train", "--resume", "--max-iters", "2", *common)  # the saved preset, no note again
    assert more.exit_code == 0, more.output
    assert "resuming at iteration 1" in more.stderr and "fine-tuning from" not in more.stderr

    other = invoke("train", "--dataset", "coco", "--ann", ann, "--images", images, "--init-weights", DEMO,
                   "--model", "fsanet_r18_medium", "--device", "cpu", "--work-dir", tmp_path / "other")
    assert other.exit_code == 2
    assert other.stderr.strip() == (f"error: --init-weights {DEMO} is a fsanet_r18_tiny, but --model is "
                                    "fsanet_r18_medium: leave --model out (or give --model fsanet_r18_tiny) "
                                    "to fine-tune it")
