"""The ``fsanet`` Typer app: one module per command, collected here."""

from __future__ import annotations

import typer

from fsanet_cli._common import state
from fsanet_cli._help import HelpCommand
from fsanet_cli._options import debug_option
from fsanet_cli._render import console, error_line, interrupted_line
from fsanet_geo import __version__

app = typer.Typer(
    name="fsanet",
    help="Find tiny objects (vehicles, ships, planes, tanks, people) in whole satellite scenes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help, as rio's: wraps at 80 columns, never cuts (cli/_help.py)
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def _version(value: bool) -> None:
    """``--version``: print the version and exit before any command runs."""
    if value:
        typer.echo(f"fsanet-geo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = debug_option(),
) -> None:
    """fsanet: FSANet tiny-object detection for GeoTIFF scenes."""
    state.debug = debug


def _register() -> None:
    """Attach the command modules (imported here so each stays independent)."""
    from fsanet_cli import data, detect, evaluate, export, info, train

    app.command("detect", cls=HelpCommand, short_help="Find objects in whole scenes; write vectors.")(detect.detect)
    app.command("train", cls=HelpCommand, short_help="Train a detector (AI-TOD or COCO).")(train.train)
    app.command("eval", no_args_is_help=True, cls=HelpCommand,
                short_help="Score detections with the AI-TOD protocol.")(evaluate.evaluate)
    app.command("export", no_args_is_help=True, cls=HelpCommand,
                short_help="Export a checkpoint to ONNX.")(export.export)
    app.add_typer(data.app, name="data")
    app.add_typer(info.app, name="model")


_register()


def main() -> None:
    """Console-script entry point.

    Usage errors (a missing file for an ``exists=True`` option, a value out of range, an
    unknown option) become one ``error:`` line and exit code 2, like library errors,
    instead of click's usage box; ``fsanet --debug`` keeps click's full report.
    """
    import sys

    try:  # typer >= 0.24 carries its own copy of click
        from typer._click.exceptions import MissingParameter, NoArgsIsHelpError, UsageError
    except ImportError:  # pragma: no cover - older typer on plain click
        from click.exceptions import MissingParameter, NoArgsIsHelpError, UsageError

    if "--debug" in sys.argv[1:]:  # the traceback, with the exit code the same error has without it
        try:
            app()
        except Exception:  # noqa: BLE001 - re-raised by handle_errors under --debug
            import traceback

            traceback.print_exc()
            sys.exit(2)
        return
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # a bare group (`fsanet data`): its commands, once
        if exc.ctx is not None:
            console.print(exc.ctx.get_help(), markup=False)
        sys.exit(2)  # as click does for a bare command with no_args_is_help
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "fsanet"
        if isinstance(exc, MissingParameter) and exc.ctx is not None:  # a bare `fsanet detect`
            console.print(exc.ctx.get_usage(), markup=False, highlight=False)
        error_line(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(2)
    except typer.Abort:
        interrupted_line()
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
