"""`fsanet train`: train a detector on AI-TOD, any COCO-format set, or your own scenes.

Thin: parses options into a :class:`~fsanet_geo.train.setup.request.TrainRequest`, gets the
run's config from :func:`~fsanet_geo.train.setup.request.train_config` (defaults, checks,
a resumed run), trains, and renders progress on stderr.

Multi-GPU: ``fsanet train --nproc 2 ...`` relaunches itself under ``torchrun``; for
several nodes run ``torchrun --nnodes ... -m fsanet_cli.main train ...``. ``--batch-size`` is per
process and the default learning rate follows the linear scaling rule on the
effective batch (``fsanet_geo.train.config``).
"""

from __future__ import annotations

import os
import signal
import time
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from fsanet_cli import _label_options as scene_opts
from fsanet_cli import _options as opts
from fsanet_cli._common import handle_errors, launch_torchrun, missing_parameter
from fsanet_cli._options import EXISTING_FILE, DatasetKind, Panel
from fsanet_cli._render import console, duration
from fsanet_cli._json_progress import JsonTrainProgress, train_end_event
from fsanet_cli._run_render import interrupted_line, splits_line, summary, validation_lines


class OptimizerKind(str, Enum):
    sgd = "sgd"
    adamw = "adamw"


DATA = Panel("Data: AI-TOD or COCO")
SCENES = Panel("Data: your scenes and vector labels")
IMAGES = Panel("Training images")
MODEL = Panel("Model")
SCHEDULE = Panel("Schedule")
RUN = Panel("Run")


@handle_errors
def train(
    dataset: DatasetKind = DATA.put(opts.dataset_option(None, help="aitod or coco.", show_default="aitod")),
    data_root: Path = DATA.put(opts.data_root_option()),
    train_split: str = DATA(None, "--train-split", help="AI-TOD training split.",
                            show_default="train where the layout has val, else trainval"),
    val_split: str = DATA(None, "--val-split", help="AI-TOD validation split (best is picked on it).",
                          show_default="val where the layout has one, else test"),
    ann: Path = DATA.put(opts.ann_option(help="Training annotations (COCO JSON).")),
    images: Path = DATA.put(opts.image_folder_option(help="Training image folder.")),
    val_ann: Path = DATA.put(opts.ann_option("--val-ann", help="Validation annotations (COCO JSON).")),
    val_images: Path = DATA.put(opts.image_folder_option("--val-images", help="Validation image folder.")),
    scene: list[str] = SCENES.put(scene_opts.scene_option()),
    labels: list[str] = SCENES.put(scene_opts.labels_option()),
    scene_list: Path = SCENES.put(scene_opts.scenes_list_option()),
    class_field: str = SCENES.put(scene_opts.class_field_option()),
    classes: str = SCENES.put(scene_opts.classes_option()),
    point_box: float = SCENES.put(scene_opts.point_box_option()),
    bands: str = SCENES(None, "--bands", metavar="B,B,B", help="1-based raster bands to train on.",
                        show_default="as fsanet detect picks"),
    aoi: Path = SCENES(None, "--aoi", **EXISTING_FILE, metavar="VECTOR",
                       help="Area labelled exhaustively; chips stay inside it.", show_default="the whole rasters"),
    val_fraction: float = SCENES(None, "--val-fraction", min=0.0, max=0.95, show_default="0.2",
                                 help="Share of the labelled area held out in spatial blocks."),
    val_aoi: Path = SCENES(None, "--val-aoi", **EXISTING_FILE, metavar="VECTOR",
                           help="Validate on these polygons instead of --val-fraction."),
    val_block: int = SCENES(None, "--val-block", min=32, metavar="PIXELS", help="Side of the validation blocks.",
                            show_default="2 chips, fitted to a small area"),
    object_share: float = SCENES(None, "--object-share", min=0.0, max=1.0, show_default="0.5",
                                 help="Share of chips centred on a labelled object."),
    chips_per_epoch: int = SCENES(None, "--chips-per-epoch", min=1, help="Training chips per epoch.",
                                  show_default="from the labelled area, 300 steps in all at least"),
    input_size: int = IMAGES(None, "--input-size", min=32, show_default="the model's; scenes: fitted to a small area",
                             help="Side of the random training crops (native scale), pixels."),
    resize_to: int = IMAGES(None, "--resize-to", min=32, show_default="never: native resolution",
                            help="Resize each image's longer side to this first (pixels)."),
    flip_v: float = IMAGES(None, "--flip-v", min=0.0, max=1.0, help="Vertical flip probability.",
                           show_default="the recipe's"),
    rot90: bool = IMAGES(None, "--rot90/--no-rot90", help="Random 90-degree rotations.", show_default="the recipe's"),
    gsd: float = IMAGES(None, "--gsd", min=0.001, show_default="unknown, not recorded",
                        help="Ground sample distance of the training images, metres per pixel; "
                             "recorded in the checkpoints for fsanet detect --gsd auto."),
    model: str = MODEL(None, "--model", help="Model preset.",
                       show_default="the --init-weights checkpoint's, else fsanet_r18_tiny on scenes "
                                    "without --pretrained-backbone, else fsanet_r50"),
    init_weights: Path = MODEL(None, "--init-weights", **EXISTING_FILE,
                               help="Start from this checkpoint's weights and preset (fine-tuning); "
                                    "classes matched by name, new ones start fresh."),
    pretrained_backbone: str = MODEL(None, "--pretrained-backbone", show_default="none, random init",
                                     help="'imagenet' or a local backbone weights file."),
    epochs: int = SCHEDULE(None, "--epochs", min=1, help="Epochs.", show_default="the recipe's"),
    max_iters: int = SCHEDULE(None, "--max-iters", min=1, help="Iterations in all (scenes: exactly this many, "
                              "the schedule fitted to them; others stop early).",
                              show_default="none, all epochs"),
    batch_size: int = SCHEDULE(None, "--batch-size", min=1, help="Images per process and step.", show_default="8"),
    lr: float = SCHEDULE(None, "--lr", min=0.0, help="Learning rate.", show_default="recipe lr x batch / 8"),
    optimizer: OptimizerKind = SCHEDULE(None, "--optimizer", help="sgd or adamw.", show_default="the recipe's"),
    warmup_iters: int = SCHEDULE(None, "--warmup-iters", min=0, help="Linear warm-up iterations.",
                                 show_default="the recipe's 500"),
    val_interval: int = SCHEDULE(None, "--val-interval", min=0, help="Validate every N epochs; 0: never.",
                                 show_default="1"),
    work_dir: Path = RUN(None, "--work-dir", file_okay=False, help="Output folder.", show_default="work_dirs/<model>"),
    resume: bool = RUN(False, "--resume", help="Continue the run in --work-dir."),
    overwrite: bool = RUN.put(opts.overwrite_option("Start a new run in a non-empty --work-dir.")),
    device: str = RUN.put(opts.device_option(None, show_default="auto")),
    nproc: int = RUN.put(opts.nproc_option()),
    threads: int = RUN.put(opts.threads_option()),
    workers: int = RUN(None, "--workers", min=0, help="DataLoader workers.", show_default="2"),
    seed: int = RUN.put(opts.seed_option(None, show_default="0")),
    amp: bool = RUN(None, "--amp/--no-amp", help="Mixed precision on CUDA.", show_default="on"),
    keep_epochs: int = RUN(None, "--keep-epochs", min=0, metavar="K", show_default="0",
                           help="Keep only the newest K epoch_N checkpoints; 0 keeps all."),
    checkpoint_every: int = RUN(None, "--checkpoint-every", min=1, show_default="at epoch ends only",
                                help="Also save 'last' every N iterations (mid-epoch)."),
    report_every: int = RUN(None, "--report-every", min=1, help="Print a progress line every N iterations.",
                            show_default="once per epoch"),
    progress: opts.ProgressFormat = RUN.put(opts.progress_option()),
) -> None:
    """Train a detector; progress on stderr, checkpoints and metrics in the work dir."""
    from fsanet_geo.train import train as run_training
    from fsanet_geo.train.setup.request import TrainRequest, train_config
    from fsanet_geo.train.setup.scene_request import SceneOptions

    opts.apply_threads(threads)
    scenes = SceneOptions(scenes=scene or [], labels=labels or [], scene_list=scene_list, class_field=class_field,
                          classes=classes, point_box=point_box, bands=bands, aoi=aoi, val_fraction=val_fraction,
                          val_aoi=val_aoi, val_block=val_block, object_share=object_share,
                          chips_per_epoch=chips_per_epoch)
    if not resume and data_root is None and ann is None and images is None and not scenes.named:  # no data at all
        missing_parameter("option", "--data-root DIR",
                          "Give the AI-TOD root, --ann FILE and --images DIR, or --scene RASTER --labels VECTOR.")
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(launch_torchrun(nproc))
    fields = {
        "dataset": dataset.value if dataset else None, "data_root": data_root, "train_split": train_split,
        "val_split": val_split, "train_ann": ann, "train_images": images, "val_ann": val_ann,
        "val_images": val_images, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "optimizer": optimizer.value if optimizer else None, "device": device, "seed": seed, "num_workers": workers,
        "val_interval": val_interval, "max_iters": max_iters, "keep_epochs": keep_epochs, "input_size": input_size,
        "resize_to": resize_to, "flip_v": flip_v, "rot90": rot90, "amp": amp, "gsd": gsd,
        "pretrained_backbone": pretrained_backbone, "init_weights": init_weights, "warmup_iters": warmup_iters,
        "checkpoint_every": checkpoint_every,
    }
    config = train_config(TrainRequest(fields=fields, scenes=scenes, model=model, work_dir=work_dir,
                                       resume=resume, overwrite=overwrite))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        run_training(config)
        return
    as_json = progress == opts.ProgressFormat.json
    shown = JsonTrainProgress() if as_json else _TrainProgress(lambda: splits_line(config), report_every)
    with shown as show:
        result = run_training(config, progress=show)
    if as_json:
        train_end_event(result)
    if result.interrupted:
        interrupted_line(result)
        raise typer.Exit(128 + int(signal.Signals[result.interrupted]))
    summary(result)


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
            self.iteration(event)
        elif event.kind == "val":
            validation_lines(event.metrics, event.epoch)

    def iteration(self, event: Any) -> None:
        """The bar, and a lasting line at an epoch's end, every ``report_every`` iterations, or
        (off a terminal) every :data:`PLAIN_PROGRESS_EVERY_S` seconds."""
        parts = " ".join(f"{k} {v:.3f}" for k, v in event.losses.items() if k != "loss")
        stats = (f"loss {event.losses.get('loss', 0.0):.3f} ({parts}) lr {event.lr:.2e} "
                 f"{event.images_per_s:.1f} img/s")
        self.bar.update(self.task, completed=event.iteration, epoch=f"{event.epoch}/{event.epochs}",
                        stats=stats, eta=duration(event.eta_s))
        if event.epoch_iter == event.iters_per_epoch:  # one lasting line per epoch
            self.bar.console.print(f"epoch {event.epoch}/{event.epochs} done at iteration "
                                   f"{event.iteration}: {stats}")
            self.last_line = time.perf_counter()
        elif self.report_every and event.iteration % self.report_every == 0:
            self.bar.console.print(f"iteration {event.iteration}/{event.total_iters} (epoch "
                                   f"{event.epoch}/{event.epochs}, ETA {duration(event.eta_s)}): {stats}")
        elif self.bar.disable and time.perf_counter() - self.last_line >= PLAIN_PROGRESS_EVERY_S:
            self.last_line = time.perf_counter()  # off a terminal: a plain line every N seconds
            console.print(f"epoch {event.epoch}/{event.epochs} iteration {event.iteration}/{event.total_iters}: "
                          f"{stats} ETA {duration(event.eta_s)}", markup=False)
