"""predict_dataset: boxes back to original pixels as COCO [x, y, w, h], labels to category ids;
evaluate_model: those results scored against the dataset's ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from fsanet_geo.errors import DatasetError, FileOverwriteError
from fsanet_geo.evaluate.predict import predict_dataset


class FakeDataset:
    """Two images resized by 2 (200x100 -> 400x200); category ids 3 and 7."""

    cat_ids = [3, 7]
    class_names = ["ship", "vehicle"]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, Any]]:
        image = torch.full((3, 200, 400), float(i))
        return image, {"image_id": 10 + i, "scale": 2.0, "orig_size": (100, 200)}


class FakeModel(nn.Module):
    """Emits one box per image, in transformed pixels, tagged with the image's fill value."""

    class_names = ["ship", "vehicle"]

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.calls.append((len(images), self.training, torch.is_inference_mode_enabled()))
        out = []
        for im in images:
            v = float(im[0, 0, 0])
            out.append({
                "boxes": torch.tensor([[20.0 + v, 40.0, 60.0, 100.0], [390.0, 190.0, 420.0, 230.0]]),
                "scores": torch.tensor([0.9, 0.4]),
                "labels": torch.tensor([1, 0]),
            })
        return out


def test_boxes_scaled_converted_and_mapped() -> None:
    model = FakeModel().train()
    seen: list[tuple[int, int]] = []
    results = predict_dataset(model, FakeDataset(), batch_size=2, progress=lambda d, t: seen.append((d, t)))
    assert model.calls == [(2, False, True), (1, False, True)]
    assert seen == [(2, 3), (3, 3)]
    assert len(results) == 6
    first = results[0]
    assert first == {"image_id": 10, "category_id": 7, "bbox": [10.0, 20.0, 20.0, 30.0], "score": pytest.approx(0.9)}
    # the second box is clipped to the original 200 x 100 image
    assert results[1]["bbox"] == [195.0, 95.0, 5.0, 5.0] and results[1]["category_id"] == 3
    assert results[2]["image_id"] == 11 and results[2]["bbox"][0] == pytest.approx(10.5)


def test_class_count_mismatch_is_an_error() -> None:
    model = FakeModel()
    model.class_names = ["a", "b", "c"]
    with pytest.raises(DatasetError, match="3 classes but the dataset has 2"):
        predict_dataset(model, FakeDataset())


def _scored_dataset() -> FakeDataset:
    ds = FakeDataset()
    ds.coco = {  # type: ignore[attr-defined]
        "images": [{"id": 10 + i} for i in range(3)],
        "categories": [{"id": 3, "name": "ship"}, {"id": 7, "name": "vehicle"}],
        "annotations": [
            {"id": 1 + i, "image_id": 10 + i, "category_id": 7, "bbox": [10.0 + i / 2, 20.0, 20.0 - i / 2, 30.0]}
            for i in range(3)
        ],
    }
    return ds


def test_evaluate_model_scores_against_the_dataset_coco() -> None:
    from fsanet_geo.evaluate.predict import evaluate_model

    result = evaluate_model(FakeModel(), _scored_dataset())
    assert result.per_class["vehicle"] == pytest.approx(1.0)  # every vehicle found exactly
    assert result.per_class["ship"] == -1.0
    with pytest.raises(DatasetError, match="no 'coco'"):
        evaluate_model(FakeModel(), FakeDataset())


def test_evaluate_model_equals_predict_then_score_and_saves_the_detections(tmp_path: Path) -> None:
    from fsanet_geo.evaluate.aitod_protocol import evaluate_coco
    from fsanet_geo.evaluate.predict import evaluate_model

    ds = _scored_dataset()
    out = tmp_path / "dets.json"
    result = evaluate_model(FakeModel(), ds, batch_size=1, save_detections=out)
    dets = predict_dataset(FakeModel(), ds, batch_size=1)
    assert json.loads(out.read_text()) == dets and out.read_text().endswith("]\n")
    assert result.to_dict() == evaluate_coco(ds.coco, dets).to_dict()  # type: ignore[attr-defined]
    with pytest.raises(FileOverwriteError):
        evaluate_model(FakeModel(), ds, save_detections=out)
    evaluate_model(FakeModel(), ds, save_detections=out, overwrite=True)
