"""The run record: ``<output>.run.json`` beside a detection output, saying how each scene was read.

Per scene: bands, data type, the 8-bit stretch (its percentiles, the measured range, the
model's levels and the equivalent ``--scale`` values, so that ``--scale-from`` reuses it on
the next scene or for training) and the ground sample distance match (scene and model GSD,
zoom). Written atomically once the output is in place, when a scene was stretched, scaled
or resampled (an 8-bit scene read as it is has nothing to record); it replaces an older record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fsanet_geo.io_utils import atomic_path
from fsanet_geo.geo.pixels.remote import file_identity

RECORD_SUFFIX = ".run.json"
RECORD_VERSION = 1


def record_path(output: str | os.PathLike[str]) -> Path:
    """``out.gpkg`` -> ``out.gpkg.run.json``."""
    p = Path(output)
    return p.with_name(p.name + RECORD_SUFFIX)


def run_record(run: Any) -> dict[str, Any]:
    """The record of a :class:`~fsanet_geo.geo.detect.run.SceneRun` (its stretches are measured if not yet)."""
    s = run.settings
    imagery = run.imagery
    scenes = []
    for index, scene in enumerate(run.scenes):
        run.scaling(index)
        choice = run.stretches[index]
        stretch: dict[str, Any] | None = None
        if choice.user and choice.scaling is not None:
            pairs = zip(choice.scaling.low, choice.scaling.high)
            stretch = {"source": "--scale", "scale": [float(v) for pair in pairs for v in pair]}
        elif choice.stretch is not None:
            stretch = {"source": "percentiles", **choice.stretch.to_dict()}
        match = scene.gsd
        scenes.append({
            "scene": scene.name,
            "path": file_identity(scene.info.path)["path"],
            "dtype": scene.info.dtype,
            "bands": list(scene.info.bands),
            "stretch": stretch,
            "gsd": None if match is None else {
                "scene_m": match.scene_gsd, "model_m": match.model_gsd, "zoom": match.zoom, "reason": match.reason
            },
        })
    return {
        "fsanet_run_record": RECORD_VERSION,
        "settings": {"scale": s.scale, "percentiles": list(s.percentiles), "stretch_to": s.stretch_to, "gsd": s.gsd},
        "model": None if imagery is None else {
            "gsd": imagery.gsd, "levels": None if imagery.levels is None else {
                "percentiles": list(imagery.percentiles), "low": list(imagery.low), "high": list(imagery.high)}
        },
        "scenes": scenes,
    }


def record_matters(record: dict[str, Any]) -> bool:
    """Whether a run record says anything: some scene was stretched, scaled or resampled."""
    return any(s["stretch"] is not None or (s["gsd"] or {}).get("zoom", 1.0) != 1.0 for s in record["scenes"])


def write_run_record(output: str | os.PathLike[str], run: Any) -> Path | None:
    """Write the record of ``run`` to :func:`record_path` of ``output`` atomically when it
    :func:`matters <record_matters>`; returns its path (None when not written)."""
    record = run_record(run)
    if not record_matters(record):
        return None
    path = record_path(output)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return path
