"""The FSANet Processing provider: three algorithms and the setting naming ``fsanet``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from .base import SETTING
from .detect_algorithm import DetectAlgorithm
from .info_algorithm import ModelInfoAlgorithm
from .train_algorithm import TrainAlgorithm


class FsanetProvider(QgsProcessingProvider):
    """Provider id ``fsanet``: ``fsanet:detect``, ``fsanet:train``, ``fsanet:modelinfo``."""

    def id(self) -> str:
        return "fsanet"

    def name(self) -> str:
        return "FSANet"

    def longName(self) -> str:
        return "FSANet tiny-object detection (runs the fsanet command)"

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg", "geojson", "fgb", "shp"]

    def load(self) -> bool:
        """Register the 'fsanet executable' setting (Settings > Options > Processing > Providers)."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # no Processing plugin: FSANET_EXECUTABLE and PATH still work
            return super().load()
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(Setting(self.name(), SETTING, "fsanet executable (empty: FSANET_EXECUTABLE, "
                                            "then PATH)", "", valuetype=Setting.FILE))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        ProcessingConfig.removeSetting(SETTING)

    def loadAlgorithms(self) -> None:
        for algorithm in (DetectAlgorithm(), TrainAlgorithm(), ModelInfoAlgorithm()):
            self.addAlgorithm(algorithm)
