"""`fsanet eval`: score a model, a COCO results file, or a detections layer (AI-TOD protocol).

Three modes, chosen by the options given:
  (a) --weights CKPT [--dataset aitod|coco] --data-root DIR [--split test] [--ann J --images DIR]
  (b) --ann gt.json --detections results.json
  (c) --truth truth.gpkg --detections out.gpkg
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.table import Table

from fsanet_cli._common import fail, handle_errors
from fsanet_cli._options import DatasetKind
from fsanet_cli._render import console, print_table

if TYPE_CHECKING:
    from fsanet_geo.evaluate.aitod_protocol import EvalResult


@handle_errors
def evaluate(
    ctx: typer.Context,
    weights: Optional[Path] = typer.Option(
        None, "--weights", exists=True, dir_okay=False, help="Checkpoint to run (mode a)."
    ),
    dataset: DatasetKind = typer.Option(DatasetKind.aitod, "--dataset", help="Dataset kind (mode a), as in train."),
    data_root: Optional[Path] = typer.Option(
        None, "--data-root", exists=True, file_okay=False, help="Dataset folder (mode a)."
    ),
    split: str = typer.Option("test", "--split", help="Split to score (mode a)."),
    ann: Optional[Path] = typer.Option(
        None, "--ann", exists=True, dir_okay=False, help="COCO ground-truth JSON (modes a, b)."
    ),
    images: Optional[Path] = typer.Option(
        None, "--images", exists=True, file_okay=False, help="Image folder for --ann (mode a)."
    ),
    detections: Optional[Path] = typer.Option(
        None,
        "--detections",
        exists=True,
        help="COCO results JSON (mode b) or detections vector layer (mode c).",
    ),
    truth: Optional[Path] = typer.Option(
        None, "--truth", exists=True, help="Ground-truth vector layer (mode c)."
    ),
    resize_to: Optional[int] = typer.Option(
        None, "--resize-to", min=32, help="Resize each image's longer side to this, pixels (mode a).",
        show_default="never: native size; larger images tiled as detect does",
    ),
    batch_size: int = typer.Option(2, "--batch-size", min=1, help="Images per forward pass (mode a)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (mode a)."),
    max_dets: int = typer.Option(1500, "--max-dets", min=1, help="Detections per image kept (AI-TOD: 1500)."),
    iou: float = typer.Option(0.5, "--iou", min=0.01, max=1.0, help="IoU for precision/recall (mode c)."),
    score_threshold: Optional[float] = typer.Option(
        None, "--score-thr", "--score-threshold", min=0.0, max=1.0,
        help="Score cut for precision/recall (mode c).", show_default="none, every detection counts"
    ),
    pixel_size: Optional[float] = typer.Option(
        None, "--pixel-size", min=0.0, help="Pixel size in CRS units (mode c)."
    ),
    class_column: str = typer.Option("class_name", "--class-column", help="Class attribute (mode c)."),
    score_column: str = typer.Option("score", "--score-column", help="Score attribute (mode c)."),
    json_out: Optional[Path] = typer.Option(None, "--json", dir_okay=False, help="Write every number to this JSON file."),
    plot: Optional[Path] = typer.Option(None, "--plot", dir_okay=False, help="Write precision-recall curves (png/pdf/svg)."),
    save_detections: Optional[Path] = typer.Option(
        None, "--save-detections", dir_okay=False, help="Also write the model's COCO results JSON (mode a)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Score detections with the AI-TOD protocol (AP .50:.95, very tiny/tiny/small/medium).

    \b
    (a) fsanet eval --weights model.safetensors --data-root DIR [--split test]
        (--dataset aitod, the default, or coco with --ann and --images)
    (b) fsanet eval --ann gt.json --detections results.json
    (c) fsanet eval --truth truth.gpkg --detections detections.gpkg
    """
    from fsanet_geo.io_utils import check_output_path

    from fsanet_geo.evaluate.plots import check_plot_path

    given_dataset = dataset if _given(ctx, "dataset") else None  # the default aitod applies to mode a only
    mode = _mode(weights, given_dataset, data_root, ann, images, detections, truth, save_detections)
    _refuse_unused_options(ctx, mode)
    for out in (json_out, save_detections):
        if out is not None:
            check_output_path(out, overwrite=overwrite)
    if plot is not None:
        check_plot_path(plot, overwrite=overwrite)

    if mode == "map":
        from fsanet_geo.evaluate.mapspace import evaluate_vectors

        assert truth is not None and detections is not None
        map_result = evaluate_vectors(
            truth,
            detections,
            iou=iou,
            score_threshold=score_threshold,
            class_column=class_column,
            score_column=score_column,
            pixel_size=pixel_size,
        )
        _print_map_table(map_result)
        result = map_result.coco
        payload: dict[str, Any] = {
            **map_result.to_dict(),
            "inputs": {"truth": str(truth), "detections": str(detections)},
        }
    else:
        if mode == "model":
            assert weights is not None and dataset is not None
            result = _run_model(weights, dataset, data_root=data_root, split=split, ann=ann, images=images,
                                resize_to=resize_to, batch_size=batch_size, device=device, max_dets=max_dets,
                                save_detections=save_detections, overwrite=overwrite)
            inputs = {"weights": str(weights), "dataset": dataset.value if dataset else None, "split": split,
                      "resize_to": resize_to}
        else:
            from fsanet_geo.evaluate.aitod_protocol import evaluate_coco

            assert ann is not None and detections is not None
            result = evaluate_coco(ann, detections, max_dets=max_dets)
            inputs = {"ann": str(ann), "detections": str(detections)}
        _print_coco_table(result)
        payload = {"mode": mode, **result.to_dict(), "inputs": inputs}

    if json_out is not None:
        from fsanet_geo.evaluate.aitod_protocol import save_json

        save_json(payload, json_out, overwrite=overwrite)
        console.print(f"metrics written to {json_out}")
    if plot is not None:
        from fsanet_geo.evaluate.plots import plot_pr_curves

        plot_pr_curves(result, plot, overwrite=overwrite)
        console.print(f"precision-recall curves written to {plot}")


def _mode(
    weights: Path | None,
    dataset: DatasetKind | None,
    data_root: Path | None,
    ann: Path | None,
    images: Path | None,
    detections: Path | None,
    truth: Path | None,
    save_detections: Path | None,
) -> str:
    """Which mode the options ask for; a bad combination exits with one line."""
    if truth is not None:
        extra = [n for n, v in (("--weights", weights), ("--dataset", dataset), ("--ann", ann)) if v is not None]
        if extra:
            fail(f"--truth (map-space mode) cannot be combined with {', '.join(extra)}")
        if detections is None:
            fail("--truth needs --detections (a vector layer)")
        return "map"
    if weights is not None:
        if detections is not None:
            fail("give either --weights (run a model) or --detections (score a file), not both")
        if dataset == DatasetKind.coco and (ann is None or images is None):
            fail("--dataset coco needs --ann gt.json and --images DIR")
        if dataset in (None, DatasetKind.aitod) and data_root is None and (ann is None or images is None):
            fail("--dataset aitod needs --data-root DIR (or --ann and --images)")
        return "model"
    if save_detections is not None:
        fail("--save-detections only applies when running a model (--weights)")
    if detections is not None:
        if ann is None:
            fail("--detections needs --ann gt.json (COCO) or --truth layer (map space)")
        extra = [n for n, v in (("--dataset", dataset), ("--data-root", data_root), ("--images", images)) if v]
        if extra:
            fail(f"scoring a results file (--ann + --detections) does not use {', '.join(extra)}")
        return "file"
    fail("nothing to evaluate: give --weights + --data-root, --ann + --detections, or --truth + --detections")
    raise AssertionError  # unreachable: fail() exits


# Options that only one mode reads; giving one in another mode is a mistake, not a no-op.
_MODE_ONLY = {
    "map": {"iou": "--iou", "score_threshold": "--score-thr", "pixel_size": "--pixel-size",
            "class_column": "--class-column", "score_column": "--score-column"},
    "model": {"split": "--split", "batch_size": "--batch-size", "device": "--device", "resize_to": "--resize-to"},
}
_MODE_NAMES = {"map": "map space (--truth)", "model": "a model run (--weights)", "file": "a results file"}


def _refuse_unused_options(ctx: typer.Context, mode: str) -> None:
    """Exit with one line when an option of another mode was given on the command line."""
    for owner, options in _MODE_ONLY.items():
        if owner == mode:
            continue
        given = [flag for name, flag in options.items() if _given(ctx, name)]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            fail(f"{', '.join(given)} only {verb} to {_MODE_NAMES[owner]}, not to {_MODE_NAMES[mode]}")
    if mode == "map" and _given(ctx, "max_dets"):
        fail("--max-dets does not apply to map space (--truth): the whole scene is one image")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was set by the user (command line or environment), not defaulted."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def _run_model(weights: Path, dataset: DatasetKind, **options: Any) -> EvalResult:
    """Score the checkpoint ``weights`` on ``dataset`` with a progress bar on stderr;
    ``options`` go to :func:`fsanet_geo.evaluate.predict.evaluate_checkpoint`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from fsanet_geo.evaluate.predict import evaluate_checkpoint

    with Progress(
        TextColumn("predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log file gets no bar (and no blank line from it)
    ) as bar:
        task = bar.add_task("predict", total=None)
        return evaluate_checkpoint(
            weights,
            dataset.value,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            **options,
        )


def _pct(value: float) -> str:
    """A COCO number as a percentage; '-' for undefined (-1)."""
    return "-" if value < 0 else f"{100 * value:.1f}"


def _print_coco_table(result: Any, *, per_class: bool = True) -> None:
    from fsanet_geo.evaluate.aitod_protocol import HEADLINE_KEYS

    head = Table(title=f"AI-TOD protocol (%), maxDets {result.max_dets[-1]}", title_justify="left")
    keys = [k for k in (*HEADLINE_KEYS, "AR") if k in result.stats]
    for key in keys:
        head.add_column(key, justify="right")
    head.add_row(*(_pct(result.stats[k]) for k in keys))
    print_table(head)
    if not per_class:
        return
    per = Table(title="AP per class (%)", title_justify="left")
    per.add_column("class")
    per.add_column("AP", justify="right")
    per.add_column("AP50", justify="right")
    ap50 = result.per_class_ap50()
    for name, ap in result.per_class.items():
        per.add_row(name, _pct(ap), _pct(ap50[name]))
    print_table(per)
    counts = result.counts
    console.print(
        f"{counts.get('images', 0)} images, {counts.get('ground_truth', 0)} objects, "
        f"{counts.get('detections', 0)} detections; '-' = no ground truth"
    )


def _print_map_table(result: Any) -> None:
    from fsanet_geo.evaluate.aitod_protocol import AREA_RANGES

    table = Table(
        title=f"Map space, IoU {result.iou:g}"
        + (f", score >= {result.score_threshold:g}" if result.score_threshold is not None else ""),
        title_justify="left",
    )
    for col in ("class", "truth", "detections", "TP", "FP", "FN", "precision", "recall", "F1", "AP %"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, c in result.per_class.items():
        table.add_row(
            name, str(c.tp + c.fn), str(c.tp + c.fp), str(c.tp), str(c.fp), str(c.fn),
            f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", _pct(result.coco.per_class.get(name, -1.0)),
        )
    o = result.overall
    table.add_row(
        "all", str(o.tp + o.fn), str(o.tp + o.fp), str(o.tp), str(o.fp), str(o.fn),
        f"{o.precision:.3f}", f"{o.recall:.3f}", f"{o.f1:.3f}", _pct(result.coco.stats["AP"]),
        style="bold",
    )
    print_table(table)
    if result.per_size:
        sizes = Table(title="By AI-TOD size range (square root of box area, pixels)", title_justify="left")
        for col in ("range", "truth", "TP", "FP", "FN", "precision", "recall"):
            sizes.add_column(col, justify="left" if col == "range" else "right")
        for label, c in result.per_size.items():
            low, high = (round(v**0.5) for v in AREA_RANGES[label])
            span = f"{label} ({low}-{high} px)" if label != "medium" else f"{label} (>= {low} px)"
            sizes.add_row(span, str(c.tp + c.fn), str(c.tp), str(c.fp), str(c.fn), f"{c.precision:.3f}", f"{c.recall:.3f}")
        print_table(sizes)
    _print_coco_table(result.coco, per_class=False)
    if result.pixel_size is None:
        console.print("pixel size unknown: no very tiny/tiny/small/medium split (give --pixel-size)")
    if any(result.dropped.values()):
        console.print(f"features without geometry left out: {result.dropped}")
