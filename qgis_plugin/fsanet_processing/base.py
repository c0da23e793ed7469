"""What every FSANet algorithm shares: finding ``fsanet``, running it with progress on the
dialog's bar, and turning a failure or a cancel into one clear message."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback

from .runner import FsanetMissing, RunResult, find_fsanet, run_fsanet

SETTING = "FSANET_EXECUTABLE_PATH"
"""The provider setting (Settings > Options > Processing > Providers > FSANet) naming fsanet."""


def setting_value() -> str | None:
    """The provider setting, or None outside a QGIS with the Processing plugin."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return None
    value = ProcessingConfig.getSetting(SETTING)
    return str(value) if value else None


def raster_source(layer: Any) -> str:
    """A raster layer's file or URL as fsanet takes it (``/vsicurl/https://...`` -> ``https://...``)."""
    source = layer.source()
    for prefix in ("/vsicurl/", "/vsis3/"):
        if source.startswith(prefix):
            rest = source[len(prefix):]
            return rest if prefix == "/vsicurl/" else f"s3://{rest}"
    return source


class FsanetAlgorithm(QgsProcessingAlgorithm):
    """An algorithm that runs one ``fsanet`` command."""

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""

    def createInstance(self) -> FsanetAlgorithm:
        return type(self)()

    def canExecute(self) -> tuple[bool, str]:
        """Shown in the dialog before anything runs: where fsanet is missing and what to do."""
        try:
            find_fsanet(setting_value())
        except FsanetMissing as exc:
            return False, str(exc)
        return True, ""

    def run_fsanet(self, args: list[str], feedback: QgsProcessingFeedback) -> RunResult:
        """Run ``fsanet ARGS``: ``progress`` events move the bar, text lines go to the log; a
        non-zero exit raises :class:`QgsProcessingException` with fsanet's message. A cancelled
        run is returned (``cancelled`` True) for the algorithm to say how to resume."""
        try:
            exe = find_fsanet(setting_value())
        except FsanetMissing as exc:
            raise QgsProcessingException(str(exc)) from exc
        feedback.pushCommandInfo(" ".join([str(exe), *args]))

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "progress" and event.get("total"):
                feedback.setProgress(100.0 * event["done"] / event["total"])
            self.on_event(event, feedback)

        try:
            result = run_fsanet(exe, args, on_event=on_event, on_text=feedback.pushConsoleInfo,
                                is_cancelled=feedback.isCanceled)
        except FsanetMissing as exc:
            raise QgsProcessingException(str(exc)) from exc
        if result.exit_code != 0 and not result.cancelled:
            raise QgsProcessingException(result.failure(exe))
        return result

    def on_event(self, event: dict[str, Any], feedback: QgsProcessingFeedback) -> None:
        """A JSON event besides the bar's (a subclass reports ``done``, ``val``, ...)."""
