"""Shared CLI plumbing: bad list options, warnings and tables stay one clean line each."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import typer
from rich.table import Table
from typer.testing import CliRunner

from fsanet_cli import _common
from fsanet_cli._common import handle_errors, parse_csv
from fsanet_cli._render import print_table
from fsanet_geo.errors import Notice

runner = CliRunner()


def test_parse_csv_reads_items_and_refuses_empty_ones() -> None:
    assert parse_csv("3, 2,1", int, "--bands") == [3, 2, 1]
    assert parse_csv(None) is None and parse_csv("  ") is None
    with pytest.raises(typer.BadParameter, match="--classes: empty item in ','"):
        parse_csv(",", str, "--classes")
    with pytest.raises(typer.BadParameter, match="--scale: empty item in '1,,2'"):
        parse_csv("1,,2", float, "--scale")
    with pytest.raises(typer.BadParameter, match="--bands: cannot read 'a'"):
        parse_csv("a,b", int, "--bands")


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @handle_errors
    def run(bands: str = typer.Option("1", "--bands"), warn: int = typer.Option(0, "--warn"),
            note: bool = typer.Option(False, "--note")) -> None:
        for _ in range(warn):
            warnings.warn("scene [x] has no CRS:\n  pixels only", UserWarning, stacklevel=1)
        if note:
            warnings.warn("12 labelled objects", Notice, stacklevel=1)
        typer.echo(",".join(map(str, parse_csv(bands, int, "--bands") or [])))

    return app


def test_bad_parameter_in_a_command_body_is_one_line_and_exit_2() -> None:
    res = runner.invoke(_app(), ["--bands", "1,x"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --bands: cannot read 'x'"
    assert res.stdout == ""


def test_bad_parameter_with_debug_keeps_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common.state, "debug", True)
    res = runner.invoke(_app(), ["--bands", "1,x"])
    assert res.exit_code == 2 and "error:" not in res.stderr  # typer's own usage error, not ours


def test_warnings_are_shown_once_as_one_line() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        res = runner.invoke(_app(), ["--bands", "3,2", "--warn", "3"])
    assert res.exit_code == 0, res.output
    assert res.stdout == "3,2\n"
    # once, on one line, markup-like brackets kept literally, no source file or line
    assert res.stderr == "warning: scene [x] has no CRS: pixels only\n"


@pytest.mark.parametrize(("rank", "expected"), [(None, "note: 12 labelled objects\n"), ("0", "note: 12 labelled objects\n"),
                                              ("1", "")])
def test_notes_come_from_rank_0_only(monkeypatch: pytest.MonkeyPatch, rank: str | None, expected: str) -> None:
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    res = runner.invoke(_app(), ["--note"])
    assert res.exit_code == 0 and res.stderr == expected


def test_tables_are_not_cut_off_a_terminal(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    table = Table()
    for name in ("class", "truth", "detections", "TP", "FP", "FN", "precision", "recall", "F1", "AP %"):
        table.add_column(name)
    table.add_row("swimming-pool", "66", "27", "27", "0", "39", "1.000", "0.409", "0.581", "40.6")
    print_table(table)
    err = capsys.readouterr().err
    assert "swimming-pool" in err and "detections" in err and "precision" in err and "…" not in err


def test_torchrun_command_drops_nproc_and_keeps_the_rest() -> None:
    import sys

    argv = ["train", "--nproc", "2", "--epochs", "3", "--nproc=4", "--work-dir", "w"]
    assert _common.torchrun_command(2, argv) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "fsanet_cli.main", "train", "--epochs", "3", "--work-dir", "w",
    ]


def test_train_and_detect_share_the_public_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    import fsanet_cli.detect
    import fsanet_cli.main
    import fsanet_cli.train

    assert fsanet_cli.train.launch_torchrun is _common.launch_torchrun
    assert fsanet_cli.detect.launch_torchrun is _common.launch_torchrun
    assert not hasattr(fsanet_cli.train, "_launch_torchrun")
    launched: list[list[str]] = []
    monkeypatch.setattr(_common.subprocess, "call", lambda command: launched.append(command) or 3)
    args = ["train", "--data-root", str(tmp_path), "--max-iters", "1"]  # a bare train stops before launching
    monkeypatch.setattr(sys, "argv", ["fsanet", "train", "--nproc", "2", *args[1:]])
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    result = CliRunner().invoke(fsanet_cli.main.app, ["train", "--nproc", "2", *args[1:]])
    assert result.exit_code == 3  # torchrun's exit code is passed on
    assert launched == [_common.torchrun_command(2, args)]


def test_percent_and_duration_formats() -> None:
    from fsanet_cli._render import duration, percent

    assert [percent(v) for v in (0.4056, 1.0, 0.0, -1.0, None)] == ["40.6", "100.0", "0.0", "-", "-"]
    assert [duration(s) for s in (0, 59.6, 3599, 3600 * 27 + 61)] == ["0:00:00", "0:01:00", "0:59:59", "27:01:01"]


def test_counting_bar_is_silent_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from fsanet_cli._render import counting_bar

    with counting_bar("rendering", total=3) as progress:
        for done in range(1, 4):
            progress(done, 3)
    assert capsys.readouterr() == ("", "")


def test_error_and_warning_lines_show_brackets_literally(capsys: pytest.CaptureFixture[str]) -> None:
    from fsanet_cli._render import error_line, warning_line

    error_line("scene [red] missing")
    warning_line("tile [/] odd")
    assert capsys.readouterr().err == "error: scene [red] missing\nwarning: tile [/] odd\n"


def test_cli_modules_define_each_class_once() -> None:
    """Shared enums (``DatasetKind``, ...) live in ``_options`` only, not once per command."""
    import ast
    from collections import Counter

    folder = Path(_common.__file__).parent
    names = Counter(node.name for path in folder.glob("*.py")
                    for node in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(node, ast.ClassDef))
    repeated = sorted(name for name, n in names.items() if n > 1)
    assert not repeated


def test_common_keeps_no_rendering_names() -> None:
    assert not {"console", "eprint", "print_table"} & set(vars(_common))
