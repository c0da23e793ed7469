"""The plugin object QGIS creates: it registers the Processing provider, nothing else."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import FsanetProvider


class FsanetPlugin:
    """``initProcessing`` adds :class:`FsanetProvider` (also in ``qgis_process``); no menus."""

    def __init__(self, iface: Any = None) -> None:
        self.iface = iface
        self.provider: FsanetProvider | None = None

    def initProcessing(self) -> None:
        self.provider = FsanetProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
