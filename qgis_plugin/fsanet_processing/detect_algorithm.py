""""Detect objects": ``fsanet detect`` on a raster layer into a vector layer (scene CRS,
``class_name`` and ``score`` fields, categorised by class when loaded)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .base import FsanetAlgorithm, raster_source
from .style import categorise_on_load

MODEL_FILTER = "FSANet models (*.safetensors *.onnx)"


class DetectAlgorithm(FsanetAlgorithm):
    """``fsanet detect INPUT -o OUTPUT --progress json`` with the dialog's options."""

    def name(self) -> str:
        return "detect"

    def displayName(self) -> str:
        return "Detect objects"

    def shortHelpString(self) -> str:
        return ("Finds tiny objects (vehicles, ships, planes, tanks, people) in a raster scene with FSANet, tile by "
                "tile, and writes one polygon per object (fields class_name, score) in the scene's CRS. The model "
                "is a .safetensors checkpoint or an .onnx export; empty: the packaged demo model (synthetic "
                "training only). Score threshold empty: the checkpoint's own, calibrated by training. Cancel keeps "
                "the finished tiles beside the output: run again with the same output file and 'Resume' ticked.")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", "Raster scene (file or URL)"))
        self.addParameter(QgsProcessingParameterFile("MODEL", "Model (.safetensors or .onnx; empty: the demo model)",
                                                     fileFilter=MODEL_FILTER, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "AOI", "Area of interest: polygon layer", [QgsProcessing.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterExtent("EXTENT", "Area of interest: extent", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "SCORE_THR", "Score threshold (empty: the checkpoint's own)", QgsProcessingParameterNumber.Double,
            optional=True, minValue=0.0, maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(
            "TILE_SIZE", "Tile size, pixels (empty: fsanet's default)", QgsProcessingParameterNumber.Integer,
            optional=True, minValue=16))
        self.addParameter(QgsProcessingParameterString(
            "GSD", "Ground sample distance: auto, native, or metres per pixel", defaultValue="auto"))
        self.addParameter(QgsProcessingParameterBoolean(
            "RESUME", "Resume an interrupted run into the same output file", defaultValue=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Detections", QgsProcessing.TypeVectorPolygon))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        layer = self.parameterAsRasterLayer(parameters, "INPUT", context)
        if layer is None:
            raise QgsProcessingException("no raster scene: pick a raster layer, a file or a URL")
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        resume = self.parameterAsBoolean(parameters, "RESUME", context)
        args = ["detect", raster_source(layer), "-o", output, "--progress", "json",
                "--resume" if resume else "--overwrite"]
        model = self.parameterAsFile(parameters, "MODEL", context)
        if model:
            args += ["--weights", model]
        aoi = self.area_of_interest(parameters, context, feedback)
        if aoi:
            args += ["--aoi", aoi]
        if parameters.get("SCORE_THR") is not None:  # unset: the checkpoint's own threshold
            args += ["--score-thr", repr(self.parameterAsDouble(parameters, "SCORE_THR", context))]
        if parameters.get("TILE_SIZE") is not None:
            args += ["--tile-size", str(self.parameterAsInt(parameters, "TILE_SIZE", context))]
        args += ["--gsd", self.parameterAsString(parameters, "GSD", context).strip() or "auto"]
        if Path(output).suffix.lower() == ".geojson":
            args.append("--keep-crs")  # the scene's CRS, as for every other format
        result = self.run_fsanet(args, feedback)
        if result.cancelled:
            raise QgsProcessingException(self.resume_message(result, output))
        if context.willLoadLayerOnCompletion(output):
            categorise_on_load(context.layerToLoadOnCompletionDetails(output))
        return {"OUTPUT": output}

    def area_of_interest(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> str | None:
        """A vector file for ``--aoi``: the polygon layer (exported when it is no file, or has a
        selection), or the extent as a WGS84 GeoJSON polygon; None for the whole scene."""
        if parameters.get("AOI"):
            return self.parameterAsCompatibleSourceLayerPath(parameters, "AOI", context, ["gpkg", "shp", "geojson"],
                                                             "gpkg", feedback)
        if not parameters.get("EXTENT"):
            return None
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        geometry = self.parameterAsExtentGeometry(parameters, "EXTENT", context, wgs84)
        folder = Path(tempfile.mkdtemp(prefix="fsanet_aoi_"))
        path = folder / "extent.geojson"
        feature = {"type": "Feature", "properties": {}, "geometry": json.loads(geometry.asJson(9))}
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
        return str(path)

    def on_event(self, event: dict[str, Any], feedback: QgsProcessingFeedback) -> None:
        if event.get("event") == "done":
            classes = ", ".join(f"{name} {n}" for name, n in event.get("classes", {}).items()) or "none"
            feedback.pushInfo(f"{event['objects']} objects ({classes}) in {event['tiles']} tiles, "
                              f"{event.get('resumed', 0)} resumed, {event.get('elapsed_s', 0):.1f} s")

    @staticmethod
    def resume_message(result: Any, output: str) -> str:
        """Cancelled: how many tiles are kept and how to continue."""
        progress = result.last("progress") or {}
        stopped = result.last("interrupted") or {}
        done = f"{progress.get('done', 0)} of {progress.get('total', '?')} tiles"
        if stopped.get("journal"):
            return (f"cancelled after {done}: the finished tiles are kept in {stopped['journal']}; to continue, run "
                    f"Detect objects again with the same parameters, the output file {output} and 'Resume an "
                    "interrupted run' ticked")
        return f"cancelled after {done}; nothing was kept to resume"
