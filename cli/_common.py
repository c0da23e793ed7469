"""Shared CLI plumbing: one-line errors and warnings, the --debug switch, list options, torchrun.

How things look on the terminal (consoles, tables, progress bars) is :mod:`fsanet_cli._render`.
"""

from __future__ import annotations

import threading
import signal
import contextlib
import functools
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import typer

from fsanet_geo.errors import Notice

from fsanet_cli._render import error_line, interrupted_line, note_line, warning_line


F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


state = _State()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line to stderr and exit with ``code``."""
    error_line(message)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn expected exceptions into one clear line and exit code 2.

    With ``fsanet --debug ...`` the traceback is shown instead. KeyboardInterrupt
    exits with 130 after the library has cleaned up its temporary files.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from fsanet_geo.errors import FsanetError

        try:
            with _warnings_as_lines():
                return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except typer.BadParameter as exc:  # raised in a command body, e.g. by parse_csv
            if state.debug or _is_missing(exc):  # click's usage line + the missing option
                raise
            fail(_one_line(exc.message))
        except KeyboardInterrupt:
            if state.debug:
                raise
            interrupted_line()
            raise typer.Exit(130) from None
        except (FsanetError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            if state.debug:
                raise
            fail(_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - last resort, still one line
            if state.debug or _is_missing(exc):
                raise
            fail(f"{type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)")

    return wrapper  # type: ignore[return-value]


def missing_parameter(param_type: str, hint: str, message: str) -> NoReturn:
    """Stop a command like click does for a missing ``param_type`` ("option" or "argument"):
    its usage line and ``Missing option HINT. MESSAGE`` on stderr, exit code 2."""
    try:  # typer >= 0.24 carries its own copy of click
        from typer._click.globals import get_current_context
        from typer._click.exceptions import MissingParameter
    except ImportError:  # pragma: no cover - older typer on plain click
        from click import get_current_context
        from click.exceptions import MissingParameter

    raise MissingParameter(message, ctx=get_current_context(silent=True), param_hint=hint, param_type=param_type)


def _is_missing(exc: BaseException) -> bool:
    return type(exc).__name__ == "MissingParameter"


def _one_line(exc: BaseException | str) -> str:
    text = exc if isinstance(exc, str) else (str(exc).strip() or type(exc).__name__)
    return " ".join(text.split())


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each distinct warning once as ``warning: MESSAGE`` on stderr (no source line);
    a :class:`~fsanet_geo.errors.Notice` as ``note: MESSAGE``. Under torchrun only rank 0
    shows notes (every rank builds the same data and model, so each would repeat them).

    With ``--debug`` Python's own format (file, line, source) is kept.
    """
    if state.debug:
        yield
        return
    seen: set[str] = set()
    original = warnings.showwarning

    quiet_notes = os.environ.get("RANK", "0") != "0"

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        text = _one_line(str(message))
        if quiet_notes and issubclass(category, Notice):
            return
        if text not in seen:
            seen.add(text)
            (note_line if issubclass(category, Notice) else warning_line)(text)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def parse_csv(value: str | None, cast: Callable[[str], Any] = str, name: str = "value") -> list[Any] | None:
    """Parse ``"3,2,1"``-style options (:func:`fsanet_geo.option_values.parse_csv`); a bad or
    empty item raises a :class:`typer.BadParameter`."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.option_values import parse_csv as parse

    try:
        return parse(value, cast, name)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc


def torchrun_command(nproc: int, argv: list[str] | None = None) -> list[str]:
    """The command running this same command line (``argv``, default ``sys.argv[1:]``) under
    ``torchrun --standalone --nproc-per-node nproc``, without its ``--nproc`` option."""
    args, skip = [], False
    for arg in sys.argv[1:] if argv is None else argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            args.append(arg)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "fsanet_cli.main", *args]


def launch_torchrun(nproc: int) -> int:
    """Run this same command line under torchrun with ``nproc`` processes; their exit code."""
    return subprocess.call(torchrun_command(nproc))

# SIGTERM (a scheduler stopping a job) handled like Ctrl-C: Python's default SIGTERM ends the
# process at once, leaving the lock and temporary files and no word on how to continue;
# sigterm_as_interrupt raises Terminated (a KeyboardInterrupt) instead, so every finally and
# context manager runs, and the command exits with 143 (128 + 15).

TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the body, SIGTERM raises :class:`Terminated` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
