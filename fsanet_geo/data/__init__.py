"""Datasets (AI-TOD v1/v2, any COCO set) and transforms (synthetic data: :mod:`fsanet_geo.synth`).

Heavy modules (torch) are imported on first use of the names that need them.
"""

from __future__ import annotations

from fsanet_geo._lazy import lazy_attributes

from fsanet_geo.data.classes import AITOD_CLASSES

_LAZY: dict[str, str] = {
    "DetectionDataset": "fsanet_geo.data.dataset",
    "build_dataset": "fsanet_geo.data.dataset",
    "collate": "fsanet_geo.data.dataset",
    "read_image": "fsanet_geo.data.dataset",
    "DetectionTransform": "fsanet_geo.data.transforms",
    "ResizeWarning": "fsanet_geo.data.dataset",
    "load_coco": "fsanet_geo.data.coco",
    "read_coco_json": "fsanet_geo.data.coco",
    "DatasetStats": "fsanet_geo.data.coco",
    "DatasetWarning": "fsanet_geo.data.coco",
    "find_aitod_split": "fsanet_geo.data.aitod",
    "validate_aitod_categories": "fsanet_geo.data.aitod",
}

__all__ = ["AITOD_CLASSES", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
