"""How ``fsanet train`` reports on stderr: the run's first line, validation lines, the stop
after a signal and the closing summary table."""

from __future__ import annotations

import shlex
from typing import Any

from rich.markup import escape

from fsanet_cli._render import console, duration, percent, plural, print_table


def splits_line(config: Any) -> None:
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


def validation_lines(metrics: dict[str, Any], epoch: int) -> None:
    """AP after an epoch, then precision and recall at the model's score threshold, overall
    and per class."""
    m = metrics
    console.print(f"epoch {epoch} validation: AP {percent(m.get('AP'))} AP50 {percent(m.get('AP50'))} "
                  f"APvt {percent(m.get('APvt'))} APt {percent(m.get('APt'))}")
    classes = metrics.get("classes")
    if not classes:
        return
    parts = ", ".join(f"{name} P {percent(c['precision'])} R {percent(c['recall'])} ({c['tp'] + c['fn']})"
                      for name, c in classes.items())
    console.print(f"  at score >= {metrics.get('score_thr', 0.05):g}, IoU 0.5: P {percent(metrics.get('precision'))} "
                  f"R {percent(metrics.get('recall'))}; {parts}", markup=False)


def interrupted_line(result: Any) -> None:
    """After SIGINT/SIGTERM: where the run stopped and how to resume it."""
    console.print(escape(f"{result.interrupted}: stopped after iteration {result.iterations} and saved "
                         f"{result.last_checkpoint}; resume with: fsanet train --resume --work-dir "
                         f"{shlex.quote(str(result.work_dir))}"), soft_wrap=True)


def summary(result: Any) -> None:
    """The closing table: iterations, loss, speed, time, checkpoints, metrics log."""
    from rich.table import Table

    table = Table(title="training summary", show_header=False)
    table.add_row("iterations", f"{result.iterations} ({plural(result.epochs_done, 'epoch')}"
                  + ("" if result.completed else ", stopped early") + ")")
    if result.final_losses:
        table.add_row("final loss", f"{result.final_losses.get('loss', float('nan')):.4f}")
    table.add_row("speed", f"{result.images_per_s:.2f} images/s")
    table.add_row("time", duration(result.seconds))
    table.add_row("last checkpoint", str(result.last_checkpoint))
    if result.best_checkpoint is not None:
        table.add_row("best checkpoint", f"{result.best_checkpoint} (AP {percent(result.best_ap)})")
    table.add_row("metrics log", str(result.metrics_log))
    print_table(table)
