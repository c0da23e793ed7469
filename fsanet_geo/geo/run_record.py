"""The run record: ``<output>.run.json`` beside a detection output, saying how each scene was read.

Per scene: bands, data type, the 8-bit stretch (its percentiles, the measured range, the
model's levels and the equivalent ``--scale`` values, so that ``--scale-from`` reuses it on
the next scene or for training) and the ground sample distance match (scene and model GSD,
zoom). Written atomically once the output is in place; it replaces an older record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fsanet_geo.io_utils import atomic_path

RECORD_SUFFIX = ".run.json"
RECORD_VERSION = 1


def record_path(output: str | os.PathLike[str]) -> Path:
    """``out.gpkg`` -> ``out.gpkg.run.json``."""
    p = Path(output)
    return p.with_name(p.name + RECORD_SUFFIX)


def run_record(run: Any) -> dict[str, Any]:
    """The record of a :class:`~fsanet_geo.geo.run.SceneRun` (its stretches are measured if not yet)."""
    s = run.settings
    imagery = run.imagery
    scenes = []
    for index, scene in enumerate(run.scenes):
        scaling = run.scaling(index)
        if s.scale is not None and scaling is not None:
            stretch: dict[str, Any] | None = {
                "source": "--scale", "scale": [float(v) for pair in zip(scaling.low, scaling.high) for v in pair]
            }
        else:
            measured = run.stretches.get(index)
            stretch = {"source": "percentiles", **measured.to_dict()} if measured is not None else None
        match = scene.gsd
        scenes.append({
            "scene": scene.name,
            "path": str(scene.info.path.resolve()),
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


def write_run_record(output: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write ``record`` to :func:`record_path` of ``output`` atomically; returns its path."""
    path = record_path(output)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return path
