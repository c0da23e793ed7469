"""`fsanet model ...`: presets and checkpoint inspection.

Tables are the commands' data: they go to stdout; errors go to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from fsanet_cli._common import handle_errors
from fsanet_cli._help import HelpCommand
from fsanet_cli._render import eprint, print_data

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Model presets and checkpoints.")


@app.command("presets", cls=HelpCommand)
@handle_errors
def presets(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the model presets: backbone, neck, head, width, tower convs, parameters.

    The column convs is the number of 3x3 convs in each head tower; --json adds
    descriptions.
    """
    from dataclasses import asdict

    from fsanet_geo.model.presets import describe_presets

    rows = describe_presets()
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
        return
    table = Table(title="fsanet-geo model presets")
    for column in ("preset", "backbone", "neck", "head", "width", "convs", "params (M)"):
        justify = "right" if column in ("width", "convs", "params (M)") else "left"
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.name, r.backbone, r.neck, r.head, str(r.width), str(r.tower_convs), f"{r.parameters / 1e6:.2f}"
        )
    print_data(table)


@app.command("info", cls=HelpCommand)
@handle_errors
def info(
    checkpoint: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, metavar="CHECKPOINT",
        help="A checkpoint (.safetensors) written by fsanet."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the config as JSON instead of a table."),
) -> None:
    """Show a checkpoint's model config (preset, classes, normalisation, inference settings)."""
    from fsanet_geo.model.files.calibration import threshold_origin
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config, read_checkpoint_metadata
    from fsanet_geo.model.files.imagery import imagery_from_metadata

    config = read_checkpoint_config(checkpoint)
    metadata = read_checkpoint_metadata(checkpoint)
    imagery = imagery_from_metadata(metadata, str(checkpoint))
    extra = {k: v for k, v in metadata.items() if k not in ("format", "format_version", "config")}
    if as_json:
        typer.echo(json.dumps({"config": config.to_dict(), "metadata": extra,
                               "gsd": imagery.gsd, "levels": imagery.levels,
                               "bands": imagery.bands}, indent=2))
        return
    table = Table(title=str(checkpoint), show_header=True)
    table.add_column("setting")
    table.add_column("value")
    table.add_row("format", f"{metadata['format']} v{metadata['format_version']}")
    table.add_row("score threshold", f"{config.score_thr:g} (fsanet detect's default --score-thr)")
    table.add_row("threshold from", threshold_origin(metadata, config))
    for key, value in config.to_dict().items():
        table.add_row(key, _format(value))
    table.add_row("gsd (m/pixel)", f"{imagery.gsd:g}" if imagery.gsd is not None else "unknown")
    levels = imagery.levels
    table.add_row(f"levels at {imagery.percentiles[0]:g}-{imagery.percentiles[1]:g}%",
                  "; ".join(f"{lo:g}..{hi:g}" for lo, hi in zip(*levels)) if levels else "unknown (0..255)")
    table.add_row("bands", ",".join(str(b) for b in imagery.bands) if imagery.bands else "detect's choice")
    for key, value in extra.items():
        table.add_row(f"metadata: {key}", value)
    print_data(table)


def _format(value: object) -> str:
    """A config value for the table: flat lists joined with commas, floats in short form."""
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value) if not any(isinstance(v, list) for v in value) else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@app.command("set-threshold", cls=HelpCommand)
@handle_errors
def set_threshold(
    checkpoint: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, metavar="CHECKPOINT",
        help="A checkpoint (.safetensors) written by fsanet."),
    value: float = typer.Argument(..., metavar="VALUE", help="The new score threshold, 0 <= VALUE < 1."),
    output: Path = typer.Option(None, "-o", "--output", dir_okay=False,
                                help="Write a copy with the new threshold instead of editing CHECKPOINT.",
                                show_default="edit CHECKPOINT in place"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output file."),
) -> None:
    """Set a checkpoint's own score threshold (the default of fsanet detect --score-thr).

    Only the metadata is rewritten (atomically); the weights are copied unchanged.
    """
    from fsanet_geo.model.files.checkpoint import read_checkpoint_config
    from fsanet_geo.model.files.checkpoint_edit import set_score_threshold

    before = read_checkpoint_config(checkpoint).score_thr
    written = set_score_threshold(checkpoint, value, output=output, overwrite=overwrite)
    eprint(f"score threshold {before:g} -> {value:g}: {written}")
