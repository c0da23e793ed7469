"""fsanet-geo: FSANet tiny-object detection for whole satellite scenes.

Public API (stable)::

    build_model(name, num_classes=8, class_names=None, pretrained_backbone=False)
    save_checkpoint(model, path)
    load_model(path, device="cpu")
    detect_scene(scene, predictor, *, tile_size=800, overlap=..., batch_size=..., ...)
    write_detections(gdf, path, *, keep_crs=False, overwrite=False)

Heavy modules (torch, rasterio, geopandas) are imported on first use, so that
``import fsanet_geo`` and ``fsanet --version`` stay fast.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "build_model": "fsanet_geo.model.presets",
    "list_presets": "fsanet_geo.model.presets",
    "save_checkpoint": "fsanet_geo.model.files.checkpoint",
    "load_model": "fsanet_geo.model.files.checkpoint",
    "detect_scene": "fsanet_geo.geo.detect.pipeline",
    "DetectSettings": "fsanet_geo.geo.settings",
    "detect_scenes": "fsanet_geo.geo.detect.pipeline",
    "detect_to_file": "fsanet_geo.geo.detect.pipeline",
    "write_detections": "fsanet_geo.geo.outputs.export",
}

__all__ = ["__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
