"""Run "Detect objects" in a standalone QGIS with a feedback that cancels after the first
progress event past the start, then again with RESUME; print what happened as one JSON line.

Run by the system ``python3`` (the one with the ``qgis`` module), not the project's venv:
``python3 drive_cancel.py PLUGIN_DIR SCENE OUTPUT TILE_SIZE``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback


class CancelAfterFirstProgress(QgsProcessingFeedback):
    """Cancels once the progress bar moved past 0 (the first batch of tiles finished)."""

    def __init__(self) -> None:
        super().__init__()
        self.progressChanged.connect(self.maybe_cancel)

    def maybe_cancel(self, value: float) -> None:
        if value > 0 and not self.isCanceled():
            self.cancel()


def main(plugin_dir: str, scene: str, output: str, tile_size: str) -> dict:
    sys.path[:0] = [plugin_dir, "/usr/share/qgis/python/plugins"]  # the plugin, QGIS's Processing
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    from fsanet_processing.plugin import FsanetPlugin

    plugin = FsanetPlugin()  # holds the provider
    plugin.initProcessing()
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("fsanet:detect")
    params = {"INPUT": scene, "OUTPUT": output, "TILE_SIZE": int(tile_size)}
    report: dict = {}
    context, feedback = QgsProcessingContext(), CancelAfterFirstProgress()
    results, ok = algorithm.run(params, context, feedback)  # failures are logged, not raised
    report["first_ok"] = ok
    report["first_log"] = feedback.textLog()
    report["cancelled"] = feedback.isCanceled()
    report["journal_kept"] = Path(output + ".partial").is_dir()
    report["output_after_cancel"] = Path(output).exists()
    resumed_feedback = QgsProcessingFeedback()
    results, ok = algorithm.run({**params, "RESUME": True}, QgsProcessingContext(), resumed_feedback)
    report["resumed_ok"] = ok
    report["resumed_log"] = resumed_feedback.textLog()
    report["journal_after_resume"] = Path(output + ".partial").exists()
    app.exitQgis()
    return report


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
