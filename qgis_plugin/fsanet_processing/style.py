"""A categorised style by ``class_name`` for the detections layer QGIS loads at the end."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsFillSymbol,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererCategory,
    QgsVectorLayer,
)

PALETTE = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
           "#bcf60c", "#fabebe", "#008080", "#e6beff")
"""Outline colours, one per class in order of first appearance."""

_keep: list[Any] = []  # QGIS holds post-processors by pointer: keep them alive


class CategoriseByClass(QgsProcessingLayerPostProcessorInterface):
    """Outlined boxes, one colour per ``class_name`` value."""

    def postProcessLayer(self, layer: Any, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> None:
        if not isinstance(layer, QgsVectorLayer) or layer.fields().indexOf("class_name") < 0:
            return
        names = sorted({str(v) for v in layer.uniqueValues(layer.fields().indexOf("class_name"))})
        categories = []
        for i, name in enumerate(names):
            symbol = QgsFillSymbol.createSimple({"color": "0,0,0,0", "outline_color": PALETTE[i % len(PALETTE)],
                                                 "outline_width": "0.4"})
            categories.append(QgsRendererCategory(name, symbol, name))
        layer.setRenderer(QgsCategorizedSymbolRenderer("class_name", categories))
        layer.triggerRepaint()


def categorise_on_load(details: Any) -> None:
    """Style the layer that ``details`` (a ``QgsProcessingContext.LayerDetails``) loads."""
    processor = CategoriseByClass()
    _keep.append(processor)
    details.setPostProcessor(processor)
