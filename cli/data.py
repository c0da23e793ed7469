"""`fsanet data ...`: write a synthetic AI-TOD-like data set; check a data set with the training rules.

Summaries, warnings and progress go to stderr.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from fsanet_cli._common import handle_errors
from fsanet_cli._help import HelpCommand
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
from fsanet_cli._render import counting_bar, eprint, warning_line

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Dataset tools (synthetic AI-TOD-like data).")


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
    from fsanet_geo.data.aitod import find_aitod_split
    from fsanet_geo.data.classes import AITOD_CLASSES
    from fsanet_geo.data.coco import read_coco_json
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    with counting_bar("rendering", total=images) as progress:
        root = generate_synthetic_aitod(
            out, images, seed=seed, size=size, layout=layout.value, version=version.value,
            test_fraction=test_fraction, density=density, overwrite=overwrite, progress=progress,
        )
    counts = [0] * len(AITOD_CLASSES)
    n_images = 0
    split_sizes = []
    for split in ("trainval", "test"):
        ann, _ = find_aitod_split(root, split, version.value)
        data = read_coco_json(ann)
        n_images += len(data["images"])
        split_sizes.append(f"{split} {len(data['images'])}")
        for a in data["annotations"]:
            counts[a["category_id"] - 1] += 1
    per_class = ", ".join(f"{name} {n}" for name, n in zip(AITOD_CLASSES, counts))
    eprint(
        f"wrote {n_images} images ({', '.join(split_sizes)}), {sum(counts)} objects to {root}: {per_class}",
        soft_wrap=True,
    )


@app.command("check", no_args_is_help=True, cls=HelpCommand)
@handle_errors
def check(
    dataset: DatasetKind = dataset_option(),
    data_root: Path | None = data_root_option(),
    split: SplitChoice = split_option(),
    ann: Path | None = ann_option(),
    images: Path | None = image_folder_option(),
) -> None:
    """Load a data set with the training rules and report what is kept, repaired and dropped."""
    import warnings

    from fsanet_geo.data.dataset import build_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset(dataset.value, data_root=data_root, split=split.value, ann=ann, images=images,
                           train=False)
    for w in caught:
        warning_line(str(w.message))
    s = ds.stats
    counts = [0] * len(ds.cat_ids)
    label_of = {cid: i for i, cid in enumerate(ds.cat_ids)}
    for rec in ds.records:
        for cid in rec.category_ids.tolist():
            counts[label_of[cid]] += 1
    per_class = ", ".join(f"{name} {n}" for name, n in zip(ds.class_names, counts))
    eprint(f"{ds.ann_path}: {s.images} images ({s.empty_images} without boxes, skipped in training), "
           f"{s.annotations} annotations: {s.kept} kept, {s.clipped} clipped, {s.outside} outside dropped, "
           f"{s.tiny} under 1 px dropped, {s.crowd} crowd/ignore", soft_wrap=True)
    eprint(f"training boxes per class: {per_class}", soft_wrap=True)


class ChipFormat(str, Enum):
    """Image format of exported chips."""

    png = "png"
    tif = "tif"


@app.command("export-chips", no_args_is_help=True, cls=HelpCommand)
@handle_errors
def export_chips_command(
    out: Path = typer.Argument(..., metavar="OUT", help="Output folder (train/, val/, export.json).",
                               file_okay=False),
    scene: list[str] | None = typer.Option(
        None, "--scene", show_default=False, metavar="SCENE",
        help="Raster scene (GeoTIFF, COG, VRT, https:// or s3:// URL); repeat with one --labels each."),
    labels: list[str] | None = typer.Option(
        None, "--labels", show_default=False, metavar="LABELS",
        help="Vector labels of the --scene at the same position (any format GDAL reads; "
        "FILE|layername=NAME picks a layer)."),
    scenes: Path | None = typer.Option(None, "--scenes", exists=True, dir_okay=False,
                                       help="CSV of scenes: header scene,labels[,split][,layer]; paths relative to it."),
    class_field: str | None = typer.Option(None, "--class-field", help="Attribute holding each feature's class.",
                                           show_default="one class named after the layer"),
    classes: str | None = typer.Option(None, "--classes", help="Classes to keep, in label order, e.g. car,truck.",
                                       show_default="all found, sorted by name"),
    point_box: float | None = typer.Option(None, "--point-box", min=0.01, metavar="METRES",
                                           help="Side of the square box drawn around point features, metres.",
                                           show_default="points refused"),
    bands: str | None = typer.Option(None, "--bands", help="1-based bands to read (3,2,1).",
                                     show_default="as detect chooses"),
    aoi: Path | None = typer.Option(None, "--aoi", help="Polygons labelled exhaustively (chips stay inside).",
                                    show_default="the whole raster", dir_okay=False),
    chip_size: int = typer.Option(800, "--chip-size", min=32, help="Chip side in pixels (the model's input size)."),
    chips: int | None = typer.Option(None, "--chips", min=1, help="Training chips to write.",
                                     show_default="train area / chip area, at least objects / 4"),
    object_share: float = typer.Option(0.5, "--object-share", min=0.0, max=1.0,
                                       help="Share of chips centred on a labelled object."),
    val_fraction: float = typer.Option(0.0, "--val-fraction", min=0.0, max=0.95,
                                       help="Share of spatial blocks held out as a val split."),
    val_block: int = typer.Option(2048, "--val-block", min=32, help="Side of the validation blocks in pixels."),
    val_aoi: Path | None = typer.Option(None, "--val-aoi", help="Polygons whose bounding windows are the val split.",
                                        dir_okay=False),
    image_format: ChipFormat = typer.Option(ChipFormat.png, "--format", help="Chip image format (tif: georeferenced)."),
    seed: int = seed_option(help="Random seed: same seed, same chips."),
    overwrite: bool = overwrite_option("Replace a non-empty output folder."),
) -> None:
    """Write the training chips of GeoTIFF scenes + vector labels as a COCO set (PNG or GeoTIFF)."""
    from fsanet_geo.geodata.export_chips import export_chips
    from fsanet_geo.geodata.labels import load_label_set
    from fsanet_geo.geodata.sources import pair_sources, read_scene_list
    from fsanet_geo.geodata.spatial_split import spatial_split
    from fsanet_geo.geodata.types import LabelOptions

    from fsanet_cli._common import parse_csv

    sources = pair_sources(scene or [], labels or []) + (read_scene_list(scenes) if scenes is not None else [])
    if not sources:
        raise typer.BadParameter("name the scenes with --scene A.tif --labels A.gpkg or --scenes list.csv")
    chosen = parse_csv(classes, str, "--classes")
    band_list = parse_csv(bands, int, "--bands")
    options = LabelOptions(class_field=class_field, classes=tuple(chosen) if chosen else None, point_box=point_box,
                           bands=tuple(band_list) if band_list else None)
    label_set = load_label_set(sources, options, aoi=None if aoi is None else str(aoi))
    splits = spatial_split(label_set, val_fraction=val_fraction, block_size=val_block, seed=seed,
                           val_aoi=None if val_aoi is None else str(val_aoi), chip_size=chip_size)
    with counting_bar("writing chips") as progress:
        done = export_chips(label_set, splits, out, chip_size=chip_size, chips=chips, seed=seed,
                            image_format=image_format.value, object_share=object_share, overwrite=overwrite,
                            progress=progress)
    val = f", val {done.val_images} blocks with {done.val_boxes} boxes" if done.val_images else ""
    eprint(f"wrote {done.train_images} training chips with {done.train_boxes} boxes{val} "
           f"({', '.join(done.class_names)}) to {done.out}", soft_wrap=True)
