"""Options shared by several commands: their enums and typer Option factories, each defined once.

A factory returns a fresh ``typer.Option`` to use as a parameter's default, e.g.
``device: str = device_option()``. Help text says what an option does; the default is shown
by typer as ``[default: ...]``. Where the parameter's value is ``None`` ("decided later",
e.g. from a recipe or a saved config), pass ``show_default="..."`` with the default the code
applies, in words; never write "default: ..." into the help text.

An option used by one command only stays in that command's module. Help shows options in
groups (:class:`Panel`), each named once per command module.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

EXISTING_DIR: dict[str, Any] = {"exists": True, "file_okay": False, "dir_okay": True}
"""Path constraints of an input folder: it must exist and be a folder."""
EXISTING_FILE: dict[str, Any] = {"exists": True, "file_okay": True, "dir_okay": False}
"""Path constraints of an input file: it must exist and be a file."""


class Panel:
    """One group of options in a command's help, under its heading (``RUN = Panel("Run")``).

    ``RUN(default, "--flag", ...)`` declares an option in the group (``typer.Option`` with
    ``rich_help_panel``, which :class:`fsanet_cli._help.HelpCommand` reads);
    ``RUN.put(device_option())`` puts a shared option in it.
    """

    def __init__(self, title: str) -> None:
        self.title = title

    def __call__(self, default: Any, *param_decls: str, **kwargs: Any) -> Any:
        return typer.Option(default, *param_decls, rich_help_panel=self.title, **kwargs)

    def put(self, option: Any) -> Any:
        """``option`` (a ``typer.Option``) shown in this group."""
        option.rich_help_panel = self.title
        return option


class DatasetKind(str, Enum):
    """Data set layouts: AI-TOD (8 classes, any known folder layout) or any COCO-format set."""

    aitod = "aitod"
    coco = "coco"


class SplitChoice(str, Enum):
    """AI-TOD splits (v1 has trainval and test only)."""

    train = "train"
    val = "val"
    trainval = "trainval"
    test = "test"


def dataset_option(
    default: DatasetKind | None = DatasetKind.aitod,
    *,
    help: str = "aitod (8 classes) or any coco set.",
    show_default: bool | str = True,
) -> Any:
    """``--dataset aitod|coco``."""
    return typer.Option(default, "--dataset", help=help, show_default=show_default)


def split_option(default: SplitChoice = SplitChoice.trainval, *, help: str = "AI-TOD split.") -> Any:
    """``--split train|val|trainval|test``."""
    return typer.Option(default, "--split", help=help)


def data_root_option(*, help: str = "AI-TOD root (any known layout).") -> Any:
    """``--data-root DIR``, an existing folder; ``None`` when not given."""
    return typer.Option(None, "--data-root", **EXISTING_DIR, help=help)


def ann_option(flag: str = "--ann", *, help: str = "COCO annotation JSON.") -> Any:
    """``--ann FILE`` (or another ``flag``), an existing COCO JSON file; ``None`` when not given."""
    return typer.Option(None, flag, **EXISTING_FILE, help=help)


def image_folder_option(flag: str = "--images", *, help: str = "Images folder.") -> Any:
    """``--images DIR`` (or another ``flag``), an existing image folder; ``None`` when not given."""
    return typer.Option(None, flag, **EXISTING_DIR, help=help)


def weights_option(*, help: str = "Checkpoint (.safetensors).", show_default: bool | str = True) -> Any:
    """``--weights FILE``, an existing checkpoint; ``None`` when not given."""
    return typer.Option(None, "--weights", **EXISTING_FILE, help=help, show_default=show_default)


def device_option(
    default: str | None = "auto",
    *,
    help: str = "auto, cpu, cuda or cuda:N.",
    show_default: bool | str = True,
) -> Any:
    """``--device auto|cpu|cuda|cuda:N`` (resolved by :func:`fsanet_geo.device.resolve_device`)."""
    return typer.Option(default, "--device", help=help, show_default=show_default)


def seed_option(default: int | None = 0, *, help: str = "Random seed.", show_default: bool | str = True) -> Any:
    """``--seed N`` (N >= 0)."""
    return typer.Option(default, "--seed", min=0, help=help, show_default=show_default)


def overwrite_option(help: str = "Replace existing outputs.") -> Any:
    """``--overwrite``: outputs are never replaced without it."""
    return typer.Option(False, "--overwrite", help=help)


def nproc_option(help: str = "Processes on this machine (one per GPU), launched with torchrun.") -> Any:
    """``--nproc N``: N > 1 relaunches the command under ``torchrun`` (see ``_common.launch_torchrun``)."""
    return typer.Option(1, "--nproc", min=1, help=help)


class ProgressFormat(str, Enum):
    """How ``detect`` and ``train`` report progress on stderr: a rich bar (plain lines off a
    terminal), or one JSON object per line for programs (the QGIS plugin; docs/cli.md)."""

    bar = "bar"
    json = "json"


def progress_option() -> Any:
    """``--progress bar|json``: see :class:`ProgressFormat`."""
    return typer.Option(ProgressFormat.bar, "--progress",
                        help="bar, or json: one JSON object per line on stderr for programs (docs/cli.md).")


def debug_option() -> Any:
    """``fsanet --debug``: full tracebacks and Python's own warning format."""
    return typer.Option(False, "--debug", help="Show full tracebacks on errors.")


def threads_option() -> Any:
    """``--threads N``: torch intra-op CPU threads (ONNX Runtime takes the same); None = torch's default."""
    return typer.Option(None, "--threads", min=1, help="CPU threads for the model (torch intra-op).",
                        show_default="all cores")


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count to ``threads``; None keeps torch's default (one per core)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
