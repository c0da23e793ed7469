"""`fsanet export`: a checkpoint's network as an ONNX file (config in its metadata).

Thin: parses options, calls :func:`fsanet_geo.model.files.onnx_export.export_onnx`, and (when
onnxruntime is installed) :func:`fsanet_geo.model.files.onnx_check.compare_onnx` to show how far
ONNX Runtime's outputs are from torch's on a random tile.
"""

from __future__ import annotations

from pathlib import Path

import typer

from fsanet_cli._common import handle_errors
from fsanet_cli._options import EXISTING_FILE, overwrite_option
from fsanet_cli._render import eprint


@handle_errors
def export(
    checkpoint: Path = typer.Argument(..., **EXISTING_FILE, help="A checkpoint (.safetensors) written by fsanet."),
    output: Path = typer.Option(..., "-o", "--output", dir_okay=False, help="The ONNX file to write (.onnx)."),
    opset: int = typer.Option(17, "--opset", min=17, help="ONNX opset."),
    check: bool = typer.Option(True, "--check/--no-check",
                               help="Run the file in ONNX Runtime on a random tile and compare with torch."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Export CHECKPOINT to ONNX (dynamic batch and tile size); run it with fsanet detect --weights."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.model.files.onnx_export import export_onnx

    if output.suffix.lower() != ".onnx":
        raise ConfigError(f"-o must name a .onnx file, got {output}")
    result = export_onnx(checkpoint, output, opset=opset, overwrite=overwrite)
    eprint(f"wrote {result.path} (opset {result.opset}, {len(result.metadata)} metadata entries)")
    if check:
        from fsanet_geo.model.files.onnx_check import compare_onnx, onnxruntime_available

        if not onnxruntime_available():
            eprint("[yellow]note:[/] onnxruntime is not installed: not checked (pip install 'fsanet-geo[onnx]')")
            return
        report = compare_onnx(checkpoint, output)
        eprint(f"ONNX Runtime vs torch on a {report.size}x{report.size} tile: largest output difference "
               f"{report.max_abs_diff:.2e}; detections {report.onnx_detections} vs {report.torch_detections}")
