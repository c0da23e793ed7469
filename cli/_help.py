"""Command help in rasterio's ``rio`` style: plain click text, readable at 80 columns.

Typer's rich panels cut option names and defaults with ``…`` at 80 columns, show a ``<bool>``
placeholder after flags (as if they took a value) and ``{scenes}...`` in usage lines. Plain
click help wraps the help text instead of cutting, and :class:`HelpCommand` renders:

- usage: ``fsanet detect [OPTIONS] SCENE...`` (an argument's metavar, upper case);
- flags plainly (``--half``, ``--rot90 / --no-rot90``), value options with a click metavar
  (``--tile-size INTEGER``, ``--format [gpkg|geojson]``, ``--weights FILE``);
- every default in one style, ``[default: VALUE]``: the parameter's own default, or the
  words of ``show_default="..."`` without the parentheses typer adds (``none`` for an
  option that is unused unless given); ranges in their own brackets, ``[x>=1]``;
- an option's short names and its first long name: further long names are hidden aliases
  (``--score-thr`` shows, ``--score-threshold`` still works);
- options in groups, each under its own heading: the option's ``rich_help_panel`` (declared
  with :class:`fsanet_cli._options.Panel`); options of no group last, under "Options".

Use it with ``app.command(..., cls=HelpCommand)`` and ``typer.Typer(rich_markup_mode=None)``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from typer.core import TyperCommand

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import Context, HelpFormatter
    from typer._display import describe_number_range
except ImportError:  # pragma: no cover - older typer on plain click
    from click import Context, HelpFormatter

    describe_number_range = None  # type: ignore[assignment]


NAME_COLUMN = 30
"""Widest name column, characters (click's own); a longer name gets a line of its own."""


def _is_argument(param: Any) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


def value_metavar(param: Any) -> str:
    """The placeholder after a value option, click style: ``INTEGER``, ``FLOAT``, ``TEXT``,
    ``FILE``, ``DIR``, ``PATH`` or the choices ``[a|b]``; ``metavar=`` when the option sets one."""
    if param.metavar:
        return str(param.metavar)
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice and descriptor.choices:
        return "[" + "|".join(str(c.value if isinstance(c, Enum) else c) for c in descriptor.choices) + "]"
    if descriptor is not None and descriptor.is_path:
        return {"file": "FILE", "dir": "DIR"}.get(str(descriptor.path_type), "PATH")
    annotation = getattr(descriptor, "annotation", None)
    return {int: "INTEGER", float: "FLOAT", bool: "BOOLEAN", Path: "PATH"}.get(annotation, "TEXT")  # type: ignore[arg-type]


def argument_metavar(param: Any) -> str:
    """An argument's name in usage and help: its metavar, else its name upper-cased; ``...``
    when it takes several values."""
    name = str(param.metavar) if param.metavar else str(param.name).upper()
    return name if name.endswith("...") or param.nargs == 1 else f"{name}..."


def shown_names(opts: list[str]) -> list[str]:
    """The names help shows: the short ones, then the first long one (the rest are aliases)."""
    short = [o for o in opts if not o.startswith("--")]
    long = [o for o in opts if o.startswith("--")]
    return short + long[:1]


def default_text(param: Any) -> str | None:
    """The default as shown after ``default:``, or None when there is none to state (a flag
    that is off, an option without a default)."""
    if isinstance(param.show_default, str):
        return param.show_default
    if param.show_default is False:
        return None
    value = param.default
    if value is None:
        return None if getattr(param, "is_flag", False) else "none"
    if getattr(param, "is_flag", False) and value is False:
        if param.secondary_opts:
            return param.secondary_opts[0].lstrip("-")  # --amp/--no-amp off: "no-amp"
        return None
    if getattr(param, "is_flag", False) and param.secondary_opts:
        return param.opts[0].lstrip("-")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v.value if isinstance(v, Enum) else v) for v in value)
    return str(value)


def help_record(param: Any) -> tuple[str, str] | None:
    """``(name column, help column)`` of one parameter; None for a hidden one."""
    if getattr(param, "hidden", False):
        return None
    if _is_argument(param):
        name = argument_metavar(param)
    else:
        name = ", ".join(shown_names(param.opts))
        if param.secondary_opts:
            name += " / " + ", ".join(param.secondary_opts)
        if not getattr(param, "is_flag", False) and not getattr(param, "count", False):
            name += f" {value_metavar(param)}"
    extra = []
    default = default_text(param)
    if default is not None and not param.required:
        extra.append(f"[default: {default}]")
    if describe_number_range is not None and (getattr(param, "min", None) is not None
                                              or getattr(param, "max", None) is not None):
        extra.append(f"[{describe_number_range(param.min, param.max)}]")
    if param.required:
        extra.append("[required]")
    text = "  ".join(t for t in (getattr(param, "help", None) or "", " ".join(extra)) if t)
    return name, text


class HelpCommand(TyperCommand):
    """A typer command whose usage line and option list follow :mod:`fsanet_cli._help`."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if _is_argument(param):
                name = argument_metavar(param)
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        """Arguments, then each option group (``rich_help_panel``) under its own heading in
        the order the groups first appear, then the options of no group under "Options"; one
        name column for all."""
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": []}
        for param in self.get_params(ctx):
            record = help_record(param)
            if record is not None:
                title = "Arguments" if _is_argument(param) else getattr(param, "rich_help_panel", None) or ""
                sections.setdefault(title, []).append(record)
        sections["Options"] = sections.pop("", [])
        width = min(max((len(name) for rows in sections.values() for name, _ in rows), default=0), NAME_COLUMN)
        for title, rows in sections.items():
            if rows:
                with formatter.section(title):
                    formatter.write_dl([(name.ljust(width), text) for name, text in rows], col_max=NAME_COLUMN)
