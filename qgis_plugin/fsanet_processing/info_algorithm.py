""""Model info": ``fsanet model info --json CHECKPOINT``, shown in the log and as outputs."""

from __future__ import annotations

import json
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)

from .base import FsanetAlgorithm


class ModelInfoAlgorithm(FsanetAlgorithm):
    """A checkpoint's preset, classes, input size, ground sample distance and score threshold."""

    def name(self) -> str:
        return "modelinfo"

    def displayName(self) -> str:
        return "Model info"

    def shortHelpString(self) -> str:
        return ("Shows a checkpoint's model: preset, classes, training input size and ground sample distance, and "
                "the score threshold Detect objects uses by default. Outputs: CLASSES (comma-separated), "
                "SCORE_THR, INFO (the whole config as JSON).")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterFile("MODEL", "Checkpoint", fileFilter="Checkpoints (*.safetensors)"))
        self.addOutput(QgsProcessingOutputString("CLASSES", "Classes"))
        self.addOutput(QgsProcessingOutputNumber("SCORE_THR", "Score threshold"))
        self.addOutput(QgsProcessingOutputString("INFO", "Model config (JSON)"))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        model = self.parameterAsFile(parameters, "MODEL", context)
        result = self.run_fsanet(["model", "info", "--json", model], feedback)
        try:
            info = json.loads(result.stdout)
        except ValueError as exc:
            raise QgsProcessingException(f"fsanet model info gave no JSON: {result.stdout[:200]!r}") from exc
        config = info.get("config", info)
        classes = ", ".join(config.get("class_names", []))
        feedback.pushInfo(f"preset {config.get('preset')}, {len(config.get('class_names', []))} classes: {classes}")
        feedback.pushInfo(f"input size {config.get('input_size')} px, GSD {info.get('gsd') or 'unknown'} m, "
                          f"score threshold {config.get('score_thr')}")
        return {"CLASSES": classes, "SCORE_THR": config.get("score_thr"), "INFO": json.dumps(info)}
