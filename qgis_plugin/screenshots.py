"""Make docs/qgis_dialog.png and docs/qgis_result.jpg: the Detect objects dialog and its result
over the example scene. Run under Xvfb with the system Python (the one with ``qgis``):

``xvfb-run -a -s "-screen 0 1400x1000x24" /usr/bin/python3 qgis_plugin/screenshots.py DETECTIONS.gpkg``
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "qgis_plugin"), "/usr/share/qgis/python/plugins"]

from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsProcessingContext,  # noqa: E402
                       QgsProcessingFeedback, QgsRasterLayer, QgsRectangle, QgsVectorLayer)
from qgis.PyQt.QtCore import QSize  # noqa: E402


def main(detections: str) -> None:
    app = QgsApplication([], True)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from fsanet_processing.plugin import FsanetPlugin
    from fsanet_processing.style import CategoriseByClass

    plugin = FsanetPlugin()
    plugin.initProcessing()
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("fsanet:detect")
    dialog = AlgorithmDialog(algorithm)
    dialog.resize(1000, 720)
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(REPO / "docs" / "qgis_dialog.png"))

    scene = QgsRasterLayer(str(REPO / "examples" / "data" / "example_scene.tif"), "scene")
    boxes = QgsVectorLayer(detections, "detections", "ogr")
    CategoriseByClass().postProcessLayer(boxes, QgsProcessingContext(), QgsProcessingFeedback())
    extent = scene.extent()
    settings = QgsMapSettings()
    settings.setLayers([boxes, scene])
    settings.setDestinationCrs(scene.crs())
    width = extent.width() * 0.3  # the top-left 900 x 600 px of the scene
    settings.setExtent(QgsRectangle(extent.xMinimum(), extent.yMaximum() - width * 2 / 3,
                                    extent.xMinimum() + width, extent.yMaximum()))
    settings.setOutputSize(QSize(1200, 800))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(str(REPO / "docs" / "qgis_result.jpg"), "JPG", 85)
    app.exitQgis()


if __name__ == "__main__":
    main(sys.argv[1])
