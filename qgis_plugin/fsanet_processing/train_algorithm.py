""""Train on a labelled layer": ``fsanet train --scene RASTER --labels VECTOR`` into a work
folder; the checkpoint is its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .base import FsanetAlgorithm, raster_source


class TrainAlgorithm(FsanetAlgorithm):
    """``fsanet train --scene INPUT --labels LABELS --class-field FIELD --work-dir OUTPUT --progress json``."""

    def name(self) -> str:
        return "train"

    def displayName(self) -> str:
        return "Train on a labelled layer"

    def shortHelpString(self) -> str:
        return ("Trains an FSANet detector on a raster and a vector layer of labelled objects (polygons or points, "
                "one class per feature in the class field); 20% of the labelled area is held out for validation, "
                "which also calibrates the checkpoint's score threshold. Initial weights (a checkpoint) fine-tune "
                "it. The work folder gets the checkpoints; the output CHECKPOINT is best.safetensors (or "
                "last.safetensors without validation). Cancel saves 'last': tick 'Resume' to continue.")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Raster scene"))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "LABELS", "Labelled objects", [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField("CLASS_FIELD", "Class field", parentLayerParameterName="LABELS",
                                                      type=QgsProcessingParameterField.String))
        self.addParameter(QgsProcessingParameterFile("INIT_WEIGHTS", "Initial weights (fine-tuning)",
                                                     fileFilter="Checkpoints (*.safetensors)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "MAX_ITERS", "Maximum iterations (empty: fsanet's schedule)", QgsProcessingParameterNumber.Integer,
            optional=True, minValue=1))
        self.addParameter(QgsProcessingParameterBoolean("RESUME", "Resume the run in the work folder",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Work folder"))
        self.addOutput(QgsProcessingOutputFile("CHECKPOINT", "Checkpoint"))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        work_dir = self.parameterAsString(parameters, "OUTPUT", context)
        args = ["train", "--work-dir", work_dir, "--progress", "json"]
        if self.parameterAsBoolean(parameters, "RESUME", context):
            args.append("--resume")
        else:
            layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
            labels = self.parameterAsCompatibleSourceLayerPath(parameters, "LABELS", context,
                                                               ["gpkg", "shp", "geojson"], "gpkg", feedback)
            args += ["--scene", raster_source(layer), "--labels", labels,
                     "--class-field", self.parameterAsString(parameters, "CLASS_FIELD", context)]
            weights = self.parameterAsFile(parameters, "INIT_WEIGHTS", context)
            if weights:
                args += ["--init-weights", weights]
        if parameters.get("MAX_ITERS") is not None:
            args += ["--max-iters", str(self.parameterAsInt(parameters, "MAX_ITERS", context))]
        result = self.run_fsanet(args, feedback)
        stopped = result.last("interrupted")
        if result.cancelled:
            saved = f"; {stopped['last_checkpoint']} is saved" if stopped else ""
            raise QgsProcessingException(f"cancelled{saved}: to continue, run Train on a labelled layer again with "
                                         f"the work folder {work_dir} and 'Resume' ticked")
        done = result.last("done") or {}
        checkpoint = done.get("best_checkpoint") or done.get("last_checkpoint") or str(Path(work_dir) / "last.safetensors")
        return {"OUTPUT": work_dir, "CHECKPOINT": checkpoint}

    def on_event(self, event: dict[str, Any], feedback: QgsProcessingFeedback) -> None:
        kind = event.get("event")
        if kind == "progress":
            feedback.setProgressText(f"iteration {event['done']}/{event['total']}, "
                                     f"loss {event.get('losses', {}).get('loss', float('nan')):.3f}")
        elif kind == "val":
            metrics = event.get("metrics", {})
            feedback.pushInfo(f"epoch {event['epoch']} validation: AP {100 * metrics.get('AP', 0):.1f}, "
                              f"precision {100 * (metrics.get('precision') or 0):.1f}, "
                              f"recall {100 * (metrics.get('recall') or 0):.1f}")
        elif kind == "done":
            thr = event.get("score_thr")
            feedback.pushInfo(f"{event['done']} iterations; checkpoint {event.get('best_checkpoint') or event['last_checkpoint']}"
                              + (f", score threshold {thr:.3g} (calibrated)" if thr is not None else
                                 ", score threshold not calibrated"))
