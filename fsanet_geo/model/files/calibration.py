"""Where a checkpoint's score threshold came from, in words (``fsanet model info``, detect's note).

Training's validation stores its F1-best cuts as ``class_score_thr`` in the config and the
``calibration`` metadata record (:mod:`fsanet_geo.evaluate.score_calibration`); a person sets
one with ``fsanet model set-threshold`` (``score_threshold_from``); the demo model's was chosen
on its own validation scene (inside its ``demo`` record). A threshold from none of these is the
preset's 0.05, which keeps far too many detections of a trained model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CALIBRATION_KEYS = ("calibration", "score_threshold_from", "demo")
"""Checkpoint metadata keys that say where its score threshold came from."""


def is_calibrated(metadata: Mapping[str, str]) -> bool:
    """Whether someone or something chose the checkpoint's threshold (else it is a preset's)."""
    return any(key in metadata for key in CALIBRATION_KEYS)


def threshold_origin(metadata: Mapping[str, str], config: Any) -> str:
    """One line on the checkpoint's threshold: its value(s) and where they came from."""
    cuts = getattr(config, "class_score_thr", None)
    names = list(getattr(config, "class_names", ()))
    record = metadata.get("calibration")
    if record:
        cal = json.loads(record)
        per_class = cal.get("classes", {})
        shown = ", ".join(
            f"{name} {cut:.3g}" + (f" (P {100 * per_class[name]['precision']:.1f} R {100 * per_class[name]['recall']:.1f})"
                                   if name in per_class else "")
            for name, cut in zip(names, cuts or ()))
        where = f"epoch {cal['epoch']}, " if "epoch" in cal else ""
        return (f"calibrated on validation ({where}F1-best at IoU {cal.get('iou', 0.5):g}): overall "
                f"{cal['score_thr']:.3g} (P {100 * cal['precision']:.1f} R {100 * cal['recall']:.1f}); per class {shown}")
    if "score_threshold_from" in metadata:
        return str(metadata["score_threshold_from"])
    if "demo" in metadata:
        return "the demo model's, chosen on its validation scene"
    return (f"{config.score_thr:g}, not calibrated (the training run did not validate): detect warns; "
            "set one with fsanet model set-threshold")
