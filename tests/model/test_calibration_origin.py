"""A checkpoint's threshold, in words: calibrated, set by hand, the demo's, or nobody's."""

from __future__ import annotations

import json

from fsanet_geo.model.config import ModelConfig
from fsanet_geo.model.files.calibration import is_calibrated, threshold_origin


def test_each_origin_is_named() -> None:
    config = ModelConfig(num_classes=2, class_names=("car", "ship"), score_thr=0.3, class_score_thr=(0.3, 0.45))
    point = {"score_thr": 0.35, "precision": 0.8, "recall": 0.75}
    record = json.dumps({"iou": 0.5, **point, "epoch": 4,
                         "classes": {"car": {**point, "score_thr": 0.3}, "ship": {**point, "precision": 0.9}}})
    assert threshold_origin({"calibration": record}, config) == (
        "calibrated on validation (epoch 4, F1-best at IoU 0.5): overall 0.35 (P 80.0 R 75.0); per class "
        "car 0.3 (P 80.0 R 75.0), ship 0.45 (P 90.0 R 75.0)")
    assert threshold_origin({"score_threshold_from": "set by hand: fsanet model set-threshold 0.3"}, config) \
        == "set by hand: fsanet model set-threshold 0.3"
    assert threshold_origin({"demo": "{}"}, config) == "the demo model's, chosen on its validation scene"
    bare = ModelConfig(num_classes=1)
    assert threshold_origin({}, bare).startswith("0.05, not calibrated (the training run did not validate)")
    assert not is_calibrated({"fine_tuned_from": "{}"}) and is_calibrated({"calibration": record})
