"""Shared CLI plumbing: one-line errors, the --debug switch, the rich consoles.

Data goes to files or stdout; status, progress and errors go to stderr.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

# Status, progress bars and tables go to stderr; stdout stays clean for data.
console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


state = _State()


def fail(message: str, code: int = 2) -> None:
    """Print one error line to stderr and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
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
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            if state.debug:
                raise
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (FsanetError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
            if state.debug:
                raise
            fail(_one_line(exc))
        except Exception as exc:  # noqa: BLE001 - last resort, still one line
            if state.debug:
                raise
            fail(f"{type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)")

    return wrapper  # type: ignore[return-value]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def parse_csv(value: str | None, cast: Callable[[str], Any] = str, name: str = "value") -> list[Any] | None:
    """Parse ``"3,2,1"``-style options; a bad item raises a :class:`typer.BadParameter`."""
    if value is None or value.strip() == "":
        return None
    items = []
    for part in value.split(","):
        part = part.strip()
        try:
            items.append(cast(part))
        except ValueError as exc:
            raise typer.BadParameter(f"{name}: cannot read {part!r}") from exc
    return items


def eprint(*args: Any, **kwargs: Any) -> None:
    """Print a status line to stderr."""
    console.print(*args, **kwargs)


def is_tty() -> bool:
    return sys.stderr.isatty()
