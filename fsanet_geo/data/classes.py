"""AI-TOD class names, in the official order (category ids 1..8)."""

from __future__ import annotations

AITOD_CLASSES: tuple[str, ...] = (
    "airplane",
    "bridge",
    "storage-tank",
    "ship",
    "swimming-pool",
    "vehicle",
    "person",
    "wind-mill",
)
"""Index i (0-based model label) has COCO category id i + 1."""
