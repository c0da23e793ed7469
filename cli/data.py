"""`fsanet data ...`: write a synthetic AI-TOD-like data set; check a data set (COCO, or GeoTIFF
scenes with vector labels) with the training rules; export scene chips.

``check``'s report goes to stdout (tables, or ``--json``); warnings, progress and the other
commands' summaries go to stderr.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from fsanet_cli._common import fail, handle_errors
from fsanet_cli._help import HelpCommand
from fsanet_cli._label_options import (
    class_field_option,
    classes_option,
    label_inputs,
    labels_option,
    point_box_option,
    scene_option,
    scenes_list_option,
)
from fsanet_cli._options import (
    DatasetKind,
    SplitChoice,
    ann_option,
    data_root_option,
    dataset_option,
    image_folder_option,
    overwrite_option,
    seed_option,
    split_option,
)
from fsanet_cli._render import counting_bar, eprint, print_data, warning_line
from fsanet_cli._reports import print_json, print_object_size

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                  help="Dataset tools: synthetic AI-TOD-like data; checks and training chips of COCO sets and of "
                       "GeoTIFF scenes with vector labels.")


class LayoutChoice(str, Enum):
    """File layouts of an AI-TOD tree (see :mod:`fsanet_geo.data.aitod`)."""

    toolkit = "toolkit"
    fsanet = "fsanet"


class VersionChoice(str, Enum):
    """AI-TOD file naming: v1 (trainval and test) or v2 (also train and val)."""

    v1 = "v1"
    v2 = "v2"


@app.command("synth", cls=HelpCommand)
@handle_errors
def synth(
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder (the data root to pass as --data-root).",
                               file_okay=False),
    images: int = typer.Option(..., "--images", "-n", min=1, max=1_000_000, help="Number of images."),
    seed: int = seed_option(help="Random seed: same seed, same bytes (as in train)."),
    size: int = typer.Option(800, "--size", min=32, max=8192, help="Image side in pixels (AI-TOD: 800)."),
    layout: LayoutChoice = typer.Option(
        LayoutChoice.toolkit, "--layout",
        help="toolkit: aitod/annotations + aitod/images/<split>; "
        "fsanet: <split>/aitod_<split>_<v>.json + <split>/Images.",
    ),
    version: VersionChoice = typer.Option(
        VersionChoice.v2, "--version", help="AI-TOD version naming (v2 adds train/val)."
    ),
    test_fraction: float = typer.Option(0.2, "--test-fraction", min=0.0, max=0.95, help="Share of images in test."),
    density: float = typer.Option(1.5, "--density", min=0.0, max=50.0,
                                  help="Expected objects per 100 x 100 px (about 96 per 800 x 800 image)."),
    overwrite: bool = overwrite_option("Replace a non-empty output folder."),
) -> None:
    """Write a synthetic AI-TOD-like data set (PNG images + COCO JSON) in AI-TOD's file layout."""
    from fsanet_geo.data.summary import synthetic_summary
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    with counting_bar("rendering", total=images) as progress:
        root = generate_synthetic_aitod(
            out, images, seed=seed, size=size, layout=layout.value, version=version.value,
            test_fraction=test_fraction, density=density, overwrite=overwrite, progress=progress,
        )
    done = synthetic_summary(root, version.value)
    splits = ", ".join(f"{split} {n}" for split, n in done["splits"].items())
    per_class = ", ".join(f"{name} {n}" for name, n in done["per_class"].items())
    eprint(f"wrote {done['images']} images ({splits}), {done['objects']} objects to {root}: {per_class}",
           soft_wrap=True)


@app.command("check", no_args_is_help=True, cls=HelpCommand)
@handle_errors
def check(
    dataset: DatasetKind = dataset_option(),
    data_root: Path | None = data_root_option(),
    split: SplitChoice = split_option(),
    ann: Path | None = ann_option(),
    images: Path | None = image_folder_option(),
    scene: list[str] | None = scene_option(),
    labels: list[str] | None = labels_option(),
    scenes: Path | None = scenes_list_option(),
    class_field: str | None = class_field_option(),
    classes: str | None = classes_option(),
    point_box: float | None = point_box_option(),
    aoi: Path | None = typer.Option(None, "--aoi", exists=True, dir_okay=False, show_default="whole scenes",
                                    help="Polygons labelled exhaustively (vector file, any CRS): objects centred "
                                         "outside them are counted as outside."),
    bands: str | None = typer.Option(None, "--bands", help="1-based bands to read, e.g. 3,2,1.",
                                     show_default="the non-alpha bands"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables."),
) -> None:
    """Load a data set with the training rules and report what is kept, repaired and dropped.

    With --scene/--labels (or --scenes) check GeoTIFF scenes and their vector labels instead: per
    scene the features read, kept, clipped and dropped by reason, and the kept objects per class
    and AI-TOD size. Both report the object sizes in pixels and the model preset built for them.
    The report goes to stdout. Exit code 1 when no object is kept.
    """

    if scene or labels or scenes is not None:
        if data_root is not None or ann is not None or images is not None:
            raise typer.BadParameter("--scene/--labels/--scenes check scene labels; --data-root, --ann and "
                                     "--images check a COCO set: give one kind")
        _check_labels(scene, labels, scenes, class_field=class_field, classes=classes, point_box=point_box,
                      aoi=aoi, bands=bands, as_json=as_json)
        return
    label_only = {"--class-field": class_field, "--classes": classes, "--point-box": point_box, "--aoi": aoi,
                  "--bands": bands}
    given = [flag for flag, value in label_only.items() if value is not None]
    if given:
        verb = "needs" if len(given) == 1 else "need"
        raise typer.BadParameter(f"{', '.join(given)} {verb} scenes with labels (--scene/--labels or --scenes)")

    from fsanet_geo.data.summary import dataset_summary

    summary, warned = dataset_summary(dataset.value, data_root=data_root, split=split.value, ann=ann, images=images)
    for message in warned:
        warning_line(message)
    if as_json:
        print_json(summary)
        return
    s = summary["stats"]
    print_data(f"{summary['ann']}: {s['images']} images ({s['empty_images']} without boxes, skipped in training), "
               f"{s['annotations']} annotations: {s['kept']} kept, {s['clipped']} clipped, {s['outside']} outside "
               f"dropped, {s['tiny']} under 1 px dropped, {s['crowd']} crowd/ignore")
    print_data("training boxes per class: " + ", ".join(f"{k} {v}" for k, v in summary["per_class"].items()))
    print_object_size(summary)


def _check_labels(
    scene: list[str] | None, labels: list[str] | None, scenes: Path | None, *, class_field: str | None,
    classes: str | None, point_box: float | None, aoi: Path | None, bands: str | None, as_json: bool,
) -> None:
    """``fsanet data check --scene/--labels``: load the label set as training does and report it."""
    from fsanet_geo.geodata.labels import load_label_set

    from fsanet_cli._reports import render_label_check

    sources, options = label_inputs(scene, labels, scenes, class_field=class_field, classes=classes,
                                    point_box=point_box, bands=bands)
    label_set = load_label_set(sources, options, aoi=str(aoi) if aoi is not None else None)
    render_label_check(label_set, aoi=str(aoi) if aoi is not None else None, as_json=as_json)
    if label_set.num_objects == 0:
        fail(f"no object kept in {len(label_set.scenes)} scene(s): training would have nothing to learn "
             "(see the dropped columns above)", 1)


class ChipFormat(str, Enum):
    """Image format of exported chips."""

    png = "png"
    tif = "tif"


@app.command("export-chips", no_args_is_help=True, cls=HelpCommand)
@handle_errors
def export_chips_command(
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder (train/, val/, export.json).",
                               file_okay=False),
    scene: list[str] = scene_option(),
    labels: list[str] = labels_option(),
    scenes: Path | None = scenes_list_option(),
    class_field: str | None = class_field_option(),
    classes: str | None = classes_option(),
    point_box: float | None = point_box_option(),
    bands: str | None = typer.Option(None, "--bands", metavar="B,B,B", help="1-based raster bands to read.",
                                     show_default="as fsanet detect picks"),
    aoi: Path | None = typer.Option(None, "--aoi", exists=True, dir_okay=False, metavar="VECTOR",
                                    help="Area labelled exhaustively; chips stay inside it.",
                                    show_default="the whole rasters"),
    chip_size: int = typer.Option(800, "--chip-size", min=32, help="Chip side in pixels (the model's input size)."),
    chips: int | None = typer.Option(None, "--chips", min=1, help="Training chips to write.",
                                     show_default="train area / chip area, at least objects / 4"),
    object_share: float = typer.Option(0.5, "--object-share", min=0.0, max=1.0,
                                       help="Share of chips centred on a labelled object."),
    val_fraction: float = typer.Option(0.0, "--val-fraction", min=0.0, max=0.95,
                                       help="Share of spatial blocks held out as a val split."),
    val_block: int | None = typer.Option(None, "--val-block", min=32, metavar="PIXELS",
                                         help="Side of the validation blocks.", show_default="2 chips, fitted to a small area"),
    val_aoi: Path | None = typer.Option(None, "--val-aoi", exists=True, dir_okay=False, metavar="VECTOR",
                                        help="Validate on these polygons instead of --val-fraction."),
    image_format: ChipFormat = typer.Option(ChipFormat.png, "--format", help="Chip image format (tif: georeferenced)."),
    seed: int = seed_option(help="Random seed: same seed, same chips."),
    overwrite: bool = overwrite_option("Replace a non-empty output folder."),
) -> None:
    """Write the training chips of GeoTIFF scenes + vector labels as a COCO set (PNG or GeoTIFF)."""
    from fsanet_geo.geodata.export_chips import export_chips
    from fsanet_geo.geodata.labels import check_scenes_once, load_label_set
    from fsanet_geo.geodata.split_plan import plan_split

    sources, options = label_inputs(scene, labels, scenes, class_field=class_field, classes=classes,
                                    point_box=point_box, bands=bands)
    check_scenes_once(sources)
    label_set = load_label_set(sources, options, aoi=None if aoi is None else str(aoi))
    splits = plan_split(label_set, chip_size=chip_size, chip_fixed=True, val_fraction=val_fraction,
                        val_block=val_block, seed=seed, val_aoi=None if val_aoi is None else str(val_aoi)).splits
    with counting_bar("writing chips") as progress:
        done = export_chips(label_set, splits, out, chip_size=chip_size, chips=chips, seed=seed,
                            image_format=image_format.value, object_share=object_share, overwrite=overwrite,
                            progress=progress)
    val = f", val {done.val_images} blocks with {done.val_boxes} boxes" if done.val_images else ""
    eprint(f"wrote {done.train_images} training chips with {done.train_boxes} boxes{val} "
           f"({', '.join(done.class_names)}) to {done.out}", soft_wrap=True)
