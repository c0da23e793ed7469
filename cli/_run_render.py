"""How the long runs report on stderr: ``fsanet train`` (the run's first line, validation
lines, the stop after a signal, the closing summary) and ``fsanet detect``
(:class:`DetectRenderer`: progress per output, summary lines)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from fsanet_cli._render import console, duration, eprint, percent, plural, print_table, warning_line

if TYPE_CHECKING:
    from fsanet_geo.geo.detect.run import DetectProgress, DetectSummary


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
    console.print(escape(f"interrupted ({result.interrupted}): stopped after iteration {result.iterations} and saved "
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
    cal = result.calibration
    if cal:
        table.add_row("score threshold", f"{cal['score_thr']:.3g}: P {percent(cal['precision'])} "
                      f"R {percent(cal['recall'])} at IoU {cal.get('iou', 0.5):g} (validation, stored for detect)")
    else:
        table.add_row("score threshold", "not calibrated (no validation): detect warns; see fsanet model set-threshold")
    table.add_row("metrics log", str(result.metrics_log))
    print_table(table)


class DetectRenderer:
    """Renders a job's events on stderr: a progress bar per output (on a terminal), or a plain
    progress line every ``plain_every_s`` seconds off one; a summary line."""

    def __init__(self, plain_every_s: float) -> None:
        self.plain_every_s = plain_every_s
        self.bar: Any = None
        self.task: Any = None
        self.bar_running = False
        self.output: Path | None = None
        self.started = 0.0
        self.first_done: int | None = None
        self.skipped: list[str] = []
        self.last_line = 0.0

    def notes(self, notes: list[str]) -> None:
        """The notes of gathering the scenes (e.g. the STAC asset picked), before any work."""
        for note in notes:
            eprint(f"[yellow]note:[/] {note}")

    def demo_model(self) -> None:
        eprint("[yellow]note:[/] using the packaged demo model, trained on synthetic data only; "
               "pass --weights for real detections")

    def output_started(self, output: Path) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} tiles"),
            TextColumn("skipped {task.fields[skipped]}"),
            TextColumn("objects {task.fields[objects]}"),
            TextColumn("{task.fields[rate]} tiles/s"),
            TextColumn("{task.fields[fetched]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.output, self.started, self.first_done = output, time.perf_counter(), None
        self.last_line = self.started
        # Off a terminal (a log file, a pipe) no bar, only the summary line.
        self.bar = Progress(*columns, console=console, transient=False, disable=not console.is_terminal)
        self.task = self.bar.add_task(output.name, total=None, skipped=0, objects=0, rate="-", fetched="")
        self.bar_running = False

    def progress(self, output: Path, p: DetectProgress) -> None:
        if self.first_done is None:
            self.first_done = p.tiles_done  # resumed tiles do not count towards the rate
            if not self.bar.disable:  # only once the scenes passed their checks: errors stay one line
                self.bar.start()
                self.bar_running = True
        rate = (p.tiles_done - self.first_done) / max(time.perf_counter() - self.started, 1e-9)
        if self.bar.disable:
            self.plain_line(output, p, rate)
            return
        self.bar.update(self.task, total=p.tiles_total, completed=p.tiles_done, skipped=p.tiles_skipped,
                        objects=p.detections, rate=f"{rate:.1f}", description=f"{output.name} ({p.scene})",
                        fetched=_fetched(p))

    def plain_line(self, output: Path, p: DetectProgress, rate: float) -> None:
        """``out.gpkg (scene.tif): 120/400 tiles, 37 objects, 3.2 tiles/s, ETA 0:01:27``, at most
        one per ``plain_every_s`` seconds and never for the last tile (the summary says it)."""
        now = time.perf_counter()
        if (now - self.last_line < self.plain_every_s or p.tiles_done >= p.tiles_total
                or p.tiles_done <= (self.first_done or 0)):  # nothing computed yet, or all (the summary)
            return
        self.last_line = now
        eta = duration((p.tiles_total - p.tiles_done) / rate) if rate > 0 else "-:--:--"
        eprint(f"{output.name} ({p.scene}): {p.tiles_done}/{plural(p.tiles_total, 'tile')}, "
               f"{plural(p.detections, 'object')}, {rate:.1f} tiles/s, ETA {eta}", markup=False)

    def stop_bar(self) -> None:
        if self.bar is not None and self.bar_running:  # Progress.stop() prints a blank line if never started
            self.bar_running = False
            self.bar.stop()

    def output_finished(self, summary: DetectSummary) -> None:
        self.stop_bar()
        p = summary.progress
        elapsed = time.perf_counter() - self.started
        computed = p.tiles_done - summary.resumed_tiles
        per_class = ", ".join(f"{name} {n}" for name, n in p.class_counts.items()) or "none"
        resumed = f", {summary.resumed_tiles} resumed" if summary.resumed_tiles else ""
        fetched = f", {_fetched(p)}" if p.bytes_fetched is not None else ""
        eprint(f"{plural(p.detections, 'object')} ({per_class}) in {plural(p.tiles_total, 'tile')} "
               f"({p.tiles_skipped} skipped{resumed}), "
               f"{elapsed:.1f} s, {computed / max(elapsed, 1e-9):.1f} tiles/s{fetched} -> {summary.output}")
        if summary.unreadable:
            shown = ", ".join(w.describe() for w in summary.unreadable[:5])
            more = f" and {len(summary.unreadable) - 5} more" if len(summary.unreadable) > 5 else ""
            warning_line(f"skipped {len(summary.unreadable)} unreadable window(s): {shown}{more} "
                         "(each with GDAL's reason in the output's metadata)")

    def preview_written(self, path: Path) -> None:
        eprint(f"preview -> {path}")

    def scene_skipped(self, scene: str, reason: str) -> None:
        self.skipped.append(scene)
        eprint(f"[yellow]skipped:[/] {scene}: {reason}")

    def skipped_summary(self) -> None:
        """After the run: name every scene set aside (failed to open with --skip-bad, or outside --aoi)."""
        if self.skipped:
            eprint(f"{len(self.skipped)} scene(s) skipped: {', '.join(self.skipped)}")

    def interrupted(self) -> None:
        """Ctrl-C: say where the finished tiles of the output being written are kept."""
        from fsanet_geo.geo.outputs.journal import journal_dir

        self.stop_bar()
        if self.output is not None and journal_dir(self.output).is_dir():
            eprint(f"finished tiles kept in {journal_dir(self.output)}: run the same command with --resume to continue")


def _fetched(p: DetectProgress) -> str:
    """``fetched 12.3 MiB`` for a run reading remote scenes; empty otherwise."""
    return "" if p.bytes_fetched is None else f"fetched {p.bytes_fetched / 2**20:.1f} MiB"
