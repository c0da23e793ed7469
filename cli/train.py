"""`fsanet train`: train a detector on AI-TOD or any COCO-format set.

Multi-GPU: ``fsanet train --nproc 2 ...`` relaunches itself under ``torchrun``; for
several nodes run ``torchrun --nnodes ... -m fsanet_cli.main train ...``. ``--batch-size`` is per
process and the default learning rate follows the linear scaling rule on the
effective batch (``fsanet_geo.train.config``).
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from fsanet_cli._common import handle_errors, launch_torchrun, missing_parameter
from fsanet_cli._options import DatasetKind, apply_threads, threads_option
from fsanet_cli._render import console, plural, print_table
from fsanet_cli._label_options import (
    class_field_option,
    classes_option,
    labels_option,
    point_box_option,
    scene_option,
    scenes_list_option,
)
from fsanet_cli._scene_data import is_plain_path, scene_data


class OptimizerKind(str, Enum):
    sgd = "sgd"
    adamw = "adamw"


_DIR = {"exists": True, "file_okay": False, "dir_okay": True}
_FILE = {"exists": True, "file_okay": True, "dir_okay": False}


@handle_errors
def train(
    dataset: DatasetKind = typer.Option(None, "--dataset", help="aitod or coco.", show_default="aitod"),
    data_root: Path = typer.Option(None, "--data-root", **_DIR, help="AI-TOD root (any known layout)."),
    train_split: str = typer.Option(None, "--train-split", help="AI-TOD training split.",
                                    show_default="train where the layout has val, else trainval"),
    val_split: str = typer.Option(None, "--val-split", help="AI-TOD validation split (best is picked on it).",
                                  show_default="val where the layout has one, else test"),
    ann: Path = typer.Option(None, "--ann", **_FILE, help="Training annotations (COCO JSON)."),
    images: Path = typer.Option(None, "--images", **_DIR, help="Training image folder."),
    val_ann: Path = typer.Option(None, "--val-ann", **_FILE, help="Validation annotations (COCO JSON)."),
    val_images: Path = typer.Option(None, "--val-images", **_DIR, help="Validation image folder."),
    model: str = typer.Option(None, "--model", help="Model preset.",
                              show_default="the --init-weights checkpoint's, else fsanet_r50"),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs.", show_default="the recipe's"),
    batch_size: int = typer.Option(None, "--batch-size", min=1,
                                   help="Images per process and step.", show_default="8"),
    lr: float = typer.Option(None, "--lr", min=0.0,
                             help="Learning rate.", show_default="recipe lr x batch / 8"),
    optimizer: OptimizerKind = typer.Option(None, "--optimizer",
                                            help="sgd or adamw.", show_default="the recipe's"),
    work_dir: Path = typer.Option(None, "--work-dir", file_okay=False,
                                  help="Output folder.", show_default="work_dirs/<model>"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --work-dir."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start a new run in a non-empty --work-dir."),
    device: str = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N.", show_default="auto"),
    seed: int = typer.Option(None, "--seed", min=0, help="Random seed.", show_default="0"),
    workers: int = typer.Option(None, "--workers", min=0, help="DataLoader workers.", show_default="2"),
    val_interval: int = typer.Option(None, "--val-interval", min=0,
                                     help="Validate every N epochs; 0: never.", show_default="1"),
    keep_epochs: int = typer.Option(None, "--keep-epochs", min=0, metavar="K",
                                    help="Keep only the newest K epoch_N checkpoints; 0 keeps all.",
                                    show_default="0"),
    max_iters: int = typer.Option(None, "--max-iters", min=1, help="Stop after this many iterations in all.",
                                  show_default="none, all epochs"),
    input_size: int = typer.Option(None, "--input-size", min=32,
                                   help="Side of the random training crops (native scale), pixels.",
                                   show_default="the model's"),
    resize_to: int = typer.Option(None, "--resize-to", min=32,
                                  help="Resize each image's longer side to this first (pixels).",
                                  show_default="never: native resolution"),
    pretrained_backbone: str = typer.Option(None, "--pretrained-backbone",
                                            help="'imagenet' or a local backbone weights file.",
                                            show_default="none, random init"),
    init_weights: Path = typer.Option(None, "--init-weights", **_FILE,
                                      help="Start from this checkpoint's weights and preset (fine-tuning); "
                                           "classes matched by name, new ones start fresh."),
    warmup_iters: int = typer.Option(None, "--warmup-iters", min=0,
                                     help="Linear warm-up iterations.", show_default="the recipe's 500"),
    flip_v: float = typer.Option(None, "--flip-v", min=0.0, max=1.0, help="Vertical flip probability.",
                                 show_default="the recipe's"),
    rot90: bool = typer.Option(None, "--rot90/--no-rot90", help="Random 90-degree rotations.",
                               show_default="the recipe's"),
    amp: bool = typer.Option(None, "--amp/--no-amp", help="Mixed precision on CUDA.", show_default="on"),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", min=1,
                                         help="Also save 'last' every N iterations (mid-epoch).",
                                         show_default="at epoch ends only"),
    report_every: int = typer.Option(None, "--report-every", min=1,
                                     help="Print a progress line every N iterations.",
                                     show_default="once per epoch"),
    nproc: int = typer.Option(1, "--nproc", min=1,
                              help="Processes on this machine (one per GPU), launched with torchrun."),
    gsd: float = typer.Option(None, "--gsd", min=0.001,
                              help="Ground sample distance of the training images, metres per pixel; "
                                   "recorded in the checkpoints for fsanet detect --gsd auto.",
                              show_default="unknown, not recorded"),
    threads: int = threads_option(),
    scene: list[str] = scene_option(),
    labels: list[str] = labels_option(),
    scene_list: Path = scenes_list_option(),
    class_field: str = class_field_option(),
    classes: str = classes_option(),
    point_box: float = point_box_option(),
    bands: str = typer.Option(None, "--bands", metavar="B,B,B", help="1-based raster bands to train on.",
                              show_default="as fsanet detect picks"),
    aoi: Path = typer.Option(None, "--aoi", **_FILE, metavar="VECTOR",
                             help="Area labelled exhaustively; chips stay inside it.",
                             show_default="the whole rasters"),
    val_fraction: float = typer.Option(None, "--val-fraction", min=0.0, max=0.95,
                                       help="Share of the labelled area held out in spatial blocks.",
                                       show_default="0.2"),
    val_aoi: Path = typer.Option(None, "--val-aoi", **_FILE, metavar="VECTOR",
                                 help="Validate on these polygons instead of --val-fraction."),
    val_block: int = typer.Option(None, "--val-block", min=32, metavar="PIXELS",
                                  help="Side of the validation blocks.", show_default="2 chips"),
    object_share: float = typer.Option(None, "--object-share", min=0.0, max=1.0,
                                       help="Share of chips centred on a labelled object.",
                                       show_default="0.5"),
    chips_per_epoch: int = typer.Option(None, "--chips-per-epoch", min=1,
                                        help="Training chips per epoch.", show_default="from the labelled area"),
) -> None:
    """Train a detector; progress on stderr, checkpoints and metrics in the work dir."""
    apply_threads(threads)
    on_scenes = bool(scene or labels or scene_list)
    if not resume and data_root is None and ann is None and images is None and not on_scenes:  # no data at all
        missing_parameter("option", "--data-root DIR",
                          "Give the AI-TOD root, --ann FILE and --images DIR, or --scene RASTER --labels VECTOR.")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(launch_torchrun(nproc))
    from fsanet_geo.train import TrainConfig
    from fsanet_geo.train import train as run_training
    from fsanet_geo.model.files.preset_choice import preset_for_run
    from fsanet_geo.train.workdir import resumed_config

    given: dict[str, Any] = {
        "dataset": dataset.value if dataset else None,
        "data_root": data_root, "train_split": train_split, "val_split": val_split,
        "train_ann": ann, "train_images": images, "val_ann": val_ann, "val_images": val_images,
        "optimizer": optimizer.value if optimizer else None, "device": device, "seed": seed,
        "num_workers": workers, "val_interval": val_interval, "max_iters": max_iters,
        "keep_epochs": keep_epochs,
        "input_size": input_size, "resize_to": resize_to, "flip_v": flip_v, "rot90": rot90, "amp": amp,
        "pretrained_backbone": _pretrained(pretrained_backbone),
        "init_weights": init_weights, "warmup_iters": warmup_iters, "gsd": gsd, "checkpoint_every": checkpoint_every,
    }
    given = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}
    scene_options = {"class_field": class_field, "classes": classes, "point_box": point_box, "bands": bands,
                     "aoi": aoi, "val_fraction": val_fraction, "val_aoi": val_aoi, "val_block": val_block,
                     "object_share": object_share, "chips_per_epoch": chips_per_epoch}
    if not on_scenes and not resume:
        flags = [f"--{k.replace('_', '-')}" for k, v in scene_options.items() if v is not None]
        if flags:  # they would be ignored on AI-TOD / COCO data
            verb = "needs" if len(flags) == 1 else "need"
            raise typer.BadParameter(f"{', '.join(flags)} {verb} scenes with labels (--scene/--labels or --scenes)")
    if on_scenes and not resume:
        given["dataset"] = _scenes_dataset(data_root, ann, dataset)
        given["scene_data"] = scene_data(scene or [], labels or [], scene_list, **scene_options)
    if resume:
        if work_dir is None:
            from fsanet_geo.errors import ConfigError

            raise ConfigError("--resume needs --work-dir (the folder of the run to continue)")
        if on_scenes or any(v is not None for v in scene_options.values()):
            given["scene_data"] = _resumed_scene_data(work_dir, scene or [], labels or [], scene_list, scene_options)
        config = resumed_config(work_dir, model=model, epochs=epochs, batch_size=batch_size, lr=lr,
                                **given)
        _check_moved(config)
    else:
        name = preset_for_run(model, init_weights)
        _check_preset(name)
        if dataset is None and not on_scenes:
            given["dataset"] = "aitod"
        if given["dataset"] == "aitod" and data_root is not None:
            from fsanet_geo.data.aitod_splits import default_splits

            given["train_split"], given["val_split"] = default_splits(data_root, train_split, val_split)
        given["work_dir"] = str(work_dir or Path("work_dirs") / name)
        config = TrainConfig.for_preset(name, epochs=epochs, batch_size=batch_size, lr=lr,
                                        overwrite=overwrite, **given)
    if not _is_main_process():  # under torchrun only rank 0 reports
        run_training(config)
        return
    with _TrainProgress(lambda: _splits_line(config), report_every) as show:
        result = run_training(config, progress=show)
    if result.interrupted:
        console.print(escape(f"{result.interrupted}: stopped after iteration {result.iterations} and saved "
                             f"{result.last_checkpoint}; resume with: fsanet train --resume --work-dir "
                             f"{shlex.quote(str(result.work_dir))}"), soft_wrap=True)
        raise typer.Exit(128 + int(signal.Signals[result.interrupted]))
    _summary(result)


def _resumed_scene_data(work_dir: Path, scenes: list[str], labels: list[str], scene_list: Path | None,
                        options: dict[str, Any]) -> dict[str, Any]:
    """The scene settings of the run in ``work_dir`` with the scene options given on ``--resume``
    (new places of moved files; a changed fixed setting is refused when the run starts)."""
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.train.workdir import read_saved_config

    saved = read_saved_config(work_dir)
    if saved.scene_data is None:
        raise ConfigError(f"--scene, --labels, --scenes and their options do not apply to --resume of {work_dir}: "
                          f"it trains on {saved.dataset}, not on scenes")
    return scene_data(scenes, labels, scene_list, **options, saved=saved.scene_data)


def _check_moved(config: Any) -> None:
    """A resumed scene run whose local scene or labels file is gone: say how to give its new place."""
    from fsanet_geo.errors import DatasetError

    for source in (config.scenes.sources if config.scene_data else []):
        for kind in ("scene", "labels"):
            path = source[kind]
            if is_plain_path(path) and not Path(path).exists():
                raise DatasetError(f"cannot resume {config.work_dir}: its {kind} {path} does not exist; if it "
                                   "moved, give every scene's new place with --scene/--labels or --scenes")


def _scenes_dataset(data_root: Path | None, ann: Path | None, dataset: Any) -> str:
    """``"scenes"``, or a ConfigError when another data source is given too."""
    if data_root is not None or ann is not None or dataset is not None:
        from fsanet_geo.errors import ConfigError

        raise ConfigError("--scene/--scenes train on rasters + vector labels: leave out --data-root, --ann and --dataset")
    return "scenes"


def _splits_line(config: Any) -> None:
    """The run's first line: which data it trains on and which split picks ``best``."""
    if config.dataset == "scenes":
        _scenes_line(config)
        return
    if config.train_ann:
        train = f"training on {config.train_ann}"
    else:
        train = f"training on {config.dataset} {config.train_split!r}"
    if not config.validates:
        console.print(f"{train}; no validation (best is not kept)")
        return
    val = str(config.val_ann) if config.val_ann else repr(config.val_split)
    note = ": the split fsanet eval reports, so AP on it is not a held-out score" if val == "'test'" else ""
    console.print(f"{train}, validating on {val} (best is picked on it){note}")


def _scenes_line(config: Any) -> None:
    scenes = config.scenes
    train = f"training on {plural(len(scenes.sources), 'scene')} with vector labels"
    if not config.validates:
        console.print(f"{train}; no validation (best is not kept)")
    elif scenes.val_aoi:
        console.print(f"{train}, validating on the blocks of {scenes.val_aoi} (best is picked on them)")
    else:
        held = f"{scenes.val_fraction:.0%} of the labelled area in spatial blocks" if scenes.val_fraction else ""
        named = "the scenes marked val" if scenes.has_val_scenes else ""
        console.print(f"{train}, validating on {' and '.join(x for x in (held, named) if x)} (best is picked on it)")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _pretrained(value: str | None) -> str | bool | None:
    if value is None:
        return None
    if value.lower() == "imagenet":
        return "imagenet"
    if not Path(value).is_file():
        from fsanet_geo.errors import ConfigError

        raise ConfigError(f"--pretrained-backbone: {value} is neither 'imagenet' nor an existing file")
    return value


def _check_preset(name: str) -> None:
    from fsanet_geo.errors import ConfigError
    from fsanet_geo.model.presets import list_presets

    if name not in list_presets():
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(list_presets())}")


PLAIN_PROGRESS_EVERY_S = 30.0
"""Off a terminal (a log file, a pipe): seconds between plain progress lines within an epoch."""


class _TrainProgress:
    """Renders :class:`TrainEvent` s with rich on stderr."""

    def __init__(self, first_line: Any = None, report_every: int | None = None) -> None:
        """``first_line()`` prints the run's first line once the run has passed its checks;
        ``report_every`` N iterations a lasting progress line."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}[/]"), BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"), TextColumn("{task.fields[stats]}"),
            console=console, transient=False, disable=not console.is_terminal,
        )
        self.task: Any = None
        self.first_line = first_line
        self.report_every = report_every
        self.last_line = time.perf_counter()

    def __enter__(self) -> _TrainProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            if self.first_line is not None:
                self.first_line()
            self.task = self.bar.add_task("train", total=event.total_iters, completed=event.iteration,
                                          epoch=f"{event.epoch}/{event.epochs}", stats="", eta="-")
            if event.iteration:
                console.print(f"resuming at iteration {event.iteration} (epoch {event.epoch})")
        elif event.kind == "iter" and self.task is not None:
            parts = " ".join(f"{k} {v:.3f}" for k, v in event.losses.items() if k != "loss")
            stats = (f"loss {event.losses.get('loss', 0.0):.3f} ({parts}) lr {event.lr:.2e} "
                     f"{event.images_per_s:.1f} img/s")
            self.bar.update(self.task, completed=event.iteration, epoch=f"{event.epoch}/{event.epochs}",
                            stats=stats, eta=_duration(event.eta_s))
            if event.epoch_iter == event.iters_per_epoch:  # one lasting line per epoch
                self.bar.console.print(f"epoch {event.epoch}/{event.epochs} done at iteration "
                                       f"{event.iteration}: {stats}")
                self.last_line = time.perf_counter()
            elif self.report_every and event.iteration % self.report_every == 0:
                self.bar.console.print(f"iteration {event.iteration}/{event.total_iters} (epoch "
                                       f"{event.epoch}/{event.epochs}, ETA {_duration(event.eta_s)}): {stats}")
            elif self.bar.disable and time.perf_counter() - self.last_line >= PLAIN_PROGRESS_EVERY_S:
                self.last_line = time.perf_counter()  # off a terminal: a plain line every N seconds
                console.print(f"epoch {event.epoch}/{event.epochs} iteration {event.iteration}/{event.total_iters}: "
                              f"{stats} ETA {_duration(event.eta_s)}", markup=False)
        elif event.kind == "val":
            m = event.metrics
            console.print(f"epoch {event.epoch} validation: AP {_pct(m.get('AP'))} "
                          f"AP50 {_pct(m.get('AP50'))} "
                          f"APvt {_pct(m.get('APvt'))} APt {_pct(m.get('APt'))}")
            _class_lines(m)


def _class_lines(metrics: dict[str, Any]) -> None:
    """Precision and recall at the model's score threshold, overall and per class."""
    classes = metrics.get("classes")
    if not classes:
        return
    parts = ", ".join(f"{name} P {_pct(c['precision'])} R {_pct(c['recall'])} ({c['tp'] + c['fn']})"
                      for name, c in classes.items())
    console.print(f"  at score >= {metrics.get('score_thr', 0.05):g}, IoU 0.5: P {_pct(metrics.get('precision'))} "
                  f"R {_pct(metrics.get('recall'))}; {parts}", markup=False)


def _pct(value: float | None) -> str:
    return "-" if value is None or value < 0 else f"{100 * value:.1f}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _summary(result: Any) -> None:
    from rich.table import Table

    table = Table(title="training summary", show_header=False)
    table.add_row("iterations", f"{result.iterations} ({plural(result.epochs_done, 'epoch')}"
                  + ("" if result.completed else ", stopped early") + ")")
    if result.final_losses:
        table.add_row("final loss", f"{result.final_losses.get('loss', float('nan')):.4f}")
    table.add_row("speed", f"{result.images_per_s:.2f} images/s")
    table.add_row("time", _duration(result.seconds))
    table.add_row("last checkpoint", str(result.last_checkpoint))
    if result.best_checkpoint is not None:
        table.add_row("best checkpoint", f"{result.best_checkpoint} (AP {_pct(result.best_ap)})")
    table.add_row("metrics log", str(result.metrics_log))
    print_table(table)
