"""FSANet for QGIS: a Processing provider running the user's ``fsanet`` command (docs/qgis.md)."""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:  # noqa: N802 - the name QGIS calls
    """QGIS's entry point: the plugin object."""
    from .plugin import FsanetPlugin

    return FsanetPlugin(iface)
