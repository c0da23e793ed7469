"""Rendering for the CLI: the two consoles, status lines, tables, progress bars, number formats.

Data goes to files or stdout (:data:`data_console`); status, progress, run tables, warnings
and errors go to stderr (:data:`console`). The library never prints: it takes progress
callbacks, and the command modules render through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

# Status, progress bars, run tables and errors go to stderr; stdout stays clean for data.
console = Console(stderr=True, highlight=False, soft_wrap=True)
# A command's data when it is a table (``fsanet model presets``, ``fsanet model info``): stdout.
data_console = Console(highlight=False)

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``, the callback the library functions take."""


def eprint(*args: Any, **kwargs: Any) -> None:
    """Print a status line to stderr (rich markup allowed)."""
    console.print(*args, **kwargs)


def error_line(message: str) -> None:
    """Print ``error: MESSAGE`` on stderr; the message is shown literally (no markup)."""
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warning_line(message: str) -> None:
    """Print ``warning: MESSAGE`` on stderr; the message is shown literally (no markup)."""
    console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def note_line(message: str) -> None:
    """Print ``note: MESSAGE`` on stderr; the message is shown literally (no markup)."""
    console.print(f"[cyan]note:[/] {escape(message)}", soft_wrap=True)


def interrupted_line() -> None:
    """Print ``interrupted`` on stderr (after Ctrl-C)."""
    console.print("[yellow]interrupted[/]")


def print_table(table: RenderableType) -> None:
    """Print a rich table on stderr; off a terminal (a log file, a pipe) at least 120 columns
    wide, so class names and headers are not cut to ``airpla…`` by the 80-column default."""
    if console.is_terminal:
        console.print(table)
        return
    wide = Console(stderr=True, highlight=False, width=max(console.width, 120), quiet=console.quiet)
    wide.print(table)


def print_data(renderable: RenderableType) -> None:
    """Print a command's data (a table or a line of it) on stdout, at the terminal's width
    (``COLUMNS``, 80 off a terminal); text is shown literally (no markup), one line each, left to
    the terminal to wrap."""
    data_console.print(renderable, markup=False, soft_wrap=isinstance(renderable, str))


def data_table(title: str, columns: list[str]) -> Table:
    """A report table for :func:`print_data`: the first column left-aligned, the rest right-aligned
    numbers; no outer border, so that ten short columns fit 80 terminal columns."""
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    return table


@contextmanager
def counting_bar(label: str, total: int | None = None) -> Iterator[ProgressFn]:
    """A transient ``LABEL ━━━ done/total ETA`` bar on stderr; yields its ``progress(done, total)``.

    Off a terminal (a log file, a pipe) there is no bar, and no blank line from it.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=total)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress


def percent(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage with one decimal; ``-`` for undefined (None or < 0,
    the COCO evaluator's -1)."""
    return "-" if value is None or value < 0 else f"{100 * value:.1f}"


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """``1 tile``, ``2 tiles``, ``0 tiles`` (``plural_form`` for irregular words)."""
    return f"{count} {word if count == 1 else plural_form or word + 's'}"


def duration(seconds: float) -> str:
    """Seconds as ``H:MM:SS`` (rounded to the second)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
