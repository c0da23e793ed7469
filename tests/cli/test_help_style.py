"""Option help states each default in one style: typer's ``[default: ...]``, never in the help text.

A default written into the help by hand goes stale (``--overlap`` said "default: 64" while the
code used min(64, tile // 4)); typer shows the parameter's own default, or ``show_default="..."``
says in words the default the code applies when the parameter is ``None``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer

from fsanet_cli.main import app

# "(default 0", "(default: aitod)", "default: the packaged demo model", in any case.
_HAND_WRITTEN_DEFAULT = re.compile(r"\(\s*default\b|\bdefault\s*:", re.IGNORECASE)
_TYPER_DEFAULT = re.compile(r"\[default:[^\]]*\]")


def _commands(command: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every (click) command of the app by its path (``()`` is ``fsanet`` itself), groups included."""
    found = {path: command}
    for name, sub in getattr(command, "commands", {}).items():  # a group's sub-commands
        found.update(_commands(sub, (*path, name)))
    return found


ALL_COMMANDS = _commands(typer.main.get_command(app))
# Rewritten on other branches of the redesign; their help is brought into line when merging.
NOT_YET_OWNED: set[tuple[str, ...]] = set()


def _hand_written_defaults(command: Any) -> list[str]:
    """``--option: help`` for each parameter whose help writes a default by hand."""
    bad = []
    for param in command.params:
        help_text = getattr(param, "help", None) or ""
        if _HAND_WRITTEN_DEFAULT.search(_TYPER_DEFAULT.sub("", help_text)):
            bad.append(f"{param.opts[0] if param.opts else param.name}: {help_text!r}")
    return bad


def test_every_command_is_walked() -> None:
    paths = set(ALL_COMMANDS)
    assert {(), ("detect",), ("train",), ("eval",), ("data", "synth"), ("data", "check"),
            ("model", "presets"), ("model", "info")} <= paths


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, id=" ".join(("fsanet", *path)),
                     marks=[pytest.mark.xfail(strict=False, reason="applied at merge")] if path in NOT_YET_OWNED else [])
        for path in sorted(ALL_COMMANDS)
    ],
)
def test_defaults_are_stated_only_in_typers_style(path: tuple[str, ...]) -> None:
    bad = _hand_written_defaults(ALL_COMMANDS[path])
    assert not bad, "state defaults with show_default, not in the help text:\n" + "\n".join(bad)


def test_the_check_sees_hand_written_defaults() -> None:
    probe = typer.Typer()

    @probe.command()
    def run(
        a: int = typer.Option(0, "--a", help="Seed (default 0, as in train)."),
        b: str = typer.Option(None, "--b", help="Checkpoint; default: the demo model."),
        c: int = typer.Option(None, "--c", help="Tile side, pixels. [default: the model's]"),
        d: int = typer.Option(1, "--d", help="Defaults are shown by typer."),
    ) -> None:
        """A probe."""

    command = typer.main.get_command(probe)
    assert [line.split(":")[0] for line in _hand_written_defaults(command)] == ["--a", "--b"]


def test_text_defaults_render_in_typers_style() -> None:
    """The style asked for: ``--seed`` shows ``[default: 0]`` from the parameter itself."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["data", "synth", "--help"], terminal_width=200)
    assert result.exit_code == 0
    seed_line = next(line for line in result.output.splitlines() if "--seed" in line)
    assert "[default: 0]" in seed_line and "(default" not in seed_line


HEADINGS = {
    "train": ["Data: AI-TOD or COCO", "Data: your scenes and vector labels", "Training images", "Model",
              "Schedule", "Run", "Options"],
    "detect": ["Arguments", "Inputs", "Pixels: bands, stretch, ground sample distance", "Model",
               "Tiling and merging across tiles", "Output", "Run", "Options"],
}


@pytest.mark.parametrize("command", sorted(HEADINGS))
def test_help_groups_options_under_headings_within_80_columns(command: str) -> None:
    """``COLUMNS=80 fsanet train --help``: every group under its heading, in order; no line over 80."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run([sys.executable, "-m", "fsanet_cli.main", command, "--help"], env=env,
                            capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    headings = [line[:-1] for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert headings == HEADINGS[command]
    options = [line.split()[0] for line in lines if line.startswith("  -")]
    assert options[-1] == "-h," and len(options) == len(set(options))  # --help last, each option once


def test_an_option_group_is_named_once_and_shown_in_one_column() -> None:
    from typer.testing import CliRunner

    from fsanet_cli._help import HelpCommand
    from fsanet_cli._options import Panel

    probe = typer.Typer(rich_markup_mode=None, add_completion=False)
    first, second = Panel("First group"), Panel("Second group")

    @probe.command(cls=HelpCommand)
    def run(
        b: int = second(1, "--b", help="In the second group."),
        a: int = first(0, "--a", help="In the first group."),
        long_name: int = second(2, "--a-much-longer-name", help="Also second."),
    ) -> None:
        """A probe."""

    text = CliRunner().invoke(probe, ["--help"], terminal_width=80).output
    body = text.split("A probe.")[1].strip().splitlines()
    assert body == [
        "Second group:",
        "  --b INTEGER                   In the second group.  [default: 1]",
        "  --a-much-longer-name INTEGER  Also second.  [default: 2]",
        "",
        "First group:",
        "  --a INTEGER                   In the first group.  [default: 0]",
        "",
        "Options:",
        "  --help                        Show this message and exit.",
    ]
