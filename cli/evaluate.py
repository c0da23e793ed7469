"""`fsanet eval`: score a model, a COCO results file, or a detections layer (AI-TOD protocol).

Three modes, chosen by the options given:
  (a) --weights CKPT [--dataset aitod|coco] --data-root DIR [--split test] [--ann J --images DIR]
  (b) --ann gt.json --detections results.json
  (c) --truth truth.gpkg --detections out.gpkg [--class-field kind] [--aoi area.gpkg]

The command parses, calls :func:`fsanet_geo.evaluate.evaluation.run_evaluation` and renders
(:mod:`fsanet_cli._reports`): the report on stdout, progress and notes on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fsanet_cli._common import fail, handle_errors
from fsanet_cli._options import DatasetKind
from fsanet_cli._render import counting_bar


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
    class_field: Optional[str] = typer.Option(
        None, "--class-field", help="The truth's class attribute, as in train (mode c).",
        show_default="the --class-column name"
    ),
    class_column: str = typer.Option(
        "class_name", "--class-column", help="The detections' class attribute (mode c)."
    ),
    score_column: str = typer.Option("score", "--score-column", help="Score attribute (mode c)."),
    aoi: Optional[Path] = typer.Option(
        None, "--aoi", exists=True, dir_okay=False, metavar="VECTOR",
        help="Score only objects centred in these polygons (any CRS; mode c).",
        show_default="the detections' scene footprint, else the layers' common area"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables."),
    json_file: Optional[Path] = typer.Option(
        None, "--json-file", dir_okay=False, help="Also write the JSON document to this file."
    ),
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
        [--class-field kind] [--aoi area.gpkg]

    The report goes to stdout (tables, or --json), notes and progress to stderr.
    """
    from fsanet_geo.evaluate.evaluation import EvalRequest, run_evaluation

    from fsanet_cli._reports import render_report

    request = EvalRequest(
        weights=weights, dataset=dataset.value if _given(ctx, "dataset") else None, data_root=data_root,
        split=split, ann=ann, images=images, detections=detections, truth=truth, resize_to=resize_to,
        batch_size=batch_size, device=device, max_dets=max_dets, iou=iou, score_threshold=score_threshold,
        pixel_size=pixel_size, class_column=class_column, class_field=class_field, score_column=score_column,
        aoi=aoi, json_file=json_file, plot=plot, save_detections=save_detections, overwrite=overwrite,
    )
    mode = request.mode()
    _refuse_unused_options(ctx, mode)
    with counting_bar("predicting") as progress:
        report = run_evaluation(request, progress=progress)
    render_report(report, as_json=as_json)


# Options that only one mode reads; giving one in another mode is a mistake, not a no-op.
_MODE_ONLY = {
    "map": {"iou": "--iou", "score_threshold": "--score-thr", "pixel_size": "--pixel-size",
            "class_column": "--class-column", "class_field": "--class-field", "score_column": "--score-column",
            "aoi": "--aoi"},
    "model": {"split": "--split", "batch_size": "--batch-size", "device": "--device", "resize_to": "--resize-to"},
}


def _refuse_unused_options(ctx: typer.Context, mode: str) -> None:
    """Exit with one line when an option of another mode was given on the command line."""
    from fsanet_geo.evaluate.evaluation import MODE_NAMES

    for owner, options in _MODE_ONLY.items():
        if owner == mode:
            continue
        given = [flag for name, flag in options.items() if _given(ctx, name)]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            fail(f"{', '.join(given)} only {verb} to {MODE_NAMES[owner]}, not to {MODE_NAMES[mode]}")
    if mode == "map" and _given(ctx, "max_dets"):
        fail("--max-dets does not apply to map space (--truth): the whole scene is one image")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was set by the user (command line or environment), not defaulted."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
