"""Precision-recall plots: curves from the evaluator's arrays, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsanet_geo.errors import FileOverwriteError, OutputError
from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
from fsanet_geo.evaluate.plots import plot_pr_curves, pr_curve


def _result():
    boxes = [[10, 10, 8, 8], [40, 40, 12, 12], [80, 80, 20, 20], [120, 120, 40, 40]]
    gt = {
        "images": [{"id": 1, "width": 200, "height": 200}],
        "categories": [{"id": 1, "name": "vehicle"}, {"id": 2, "name": "ship"}, {"id": 3, "name": "person"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": 1 if i < 2 else 2, "bbox": b, "area": b[2] * b[3]}
            for i, b in enumerate(boxes)
        ],
    }
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": boxes[0], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [0, 150, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 2, "bbox": boxes[2], "score": 0.7},
    ]
    return evaluate_coco(gt, dets)


def test_pr_curve_values() -> None:
    result = _result()
    vehicle = pr_curve(result, 0, 0.5)
    assert vehicle is not None and vehicle.shape == (101,)
    # one of two vehicles found, first: precision 1 up to recall 0.5
    np.testing.assert_allclose(vehicle[:51], 1.0)
    np.testing.assert_allclose(vehicle[51:], 0.0)
    assert vehicle.mean() == pytest.approx(result.per_class_ap50()["vehicle"])
    mean_curve = pr_curve(result, 1, None)
    assert mean_curve is not None and mean_curve.mean() == pytest.approx(result.per_class["ship"])
    assert pr_curve(result, 2, 0.5) is None  # person: no ground truth


def test_plot_is_written_atomically(tmp_path: Path) -> None:
    result = _result()
    out = plot_pr_curves(result, tmp_path / "pr.png")
    with Image.open(out) as im:
        assert im.size == (1100, 480)
    assert [p.name for p in tmp_path.iterdir()] == ["pr.png"]  # no temporary left
    with pytest.raises(FileOverwriteError):
        plot_pr_curves(result, out)
    plot_pr_curves(result, out, overwrite=True)
    assert plot_pr_curves(result, tmp_path / "pr.svg").read_text().lstrip().startswith("<?xml")
    with pytest.raises(OutputError, match="cannot write a plot"):
        plot_pr_curves(result, tmp_path / "pr.txt")
