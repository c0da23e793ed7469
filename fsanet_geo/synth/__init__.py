"""Synthetic AI-TOD-like data: the deterministic renderer and what is written from it.

- :mod:`~fsanet_geo.synth.render`: ``render_scene`` / ``render_scene_layers``, a scene
  with exact pixel boxes (the ground from :mod:`~fsanet_geo.synth.landscape`, the objects'
  frequencies, sizes and shapes from :mod:`~fsanet_geo.synth.shapes`);
- :mod:`~fsanet_geo.synth.aitod_layout`: ``generate_synthetic_aitod`` writes a data set in
  AI-TOD's exact file layout (PNG + COCO JSON);
- :mod:`~fsanet_geo.synth.example_scene`: ``make_example_scene`` writes a georeferenced
  GeoTIFF scene with its ground truth (GeoPackage + COCO JSON).

Heavy modules (rasterio, geopandas) are imported on first use of the names that need them.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

_LAZY: dict[str, str] = {
    "DEFAULT_DENSITY": "fsanet_geo.synth.render",
    "SyntheticScene": "fsanet_geo.synth.render",
    "render_scene": "fsanet_geo.synth.render",
    "render_scene_layers": "fsanet_geo.synth.render",
    "generate_synthetic_aitod": "fsanet_geo.synth.aitod_layout",
    "scene_seed": "fsanet_geo.synth.aitod_layout",
    "ExampleScene": "fsanet_geo.synth.example_scene",
    "make_example_scene": "fsanet_geo.synth.example_scene",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
