"""Options naming scenes and their vector labels (``fsanet data check`` and ``fsanet train``), each
defined once, and the one function that turns their values into library inputs.

``--scene A.tif --labels A.gpkg`` (repeatable, paired in order) and/or ``--scenes list.csv``
(rows ``scene,labels[,split][,layer]``); ``--class-field``, ``--classes``, ``--point-box``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from fsanet_cli._common import parse_csv
from fsanet_cli._options import EXISTING_FILE

if TYPE_CHECKING:  # the geodata modules import rasterio: not at CLI start-up
    from fsanet_geo.geodata.types import LabelOptions, LabelSource


def scene_option(help: str = "Raster scene (GeoTIFF, COG, VRT, https:// or s3:// URL); repeat with one --labels "
                             "each.") -> Any:
    """``--scene A.tif`` (repeatable)."""
    return typer.Option(None, "--scene", help=help, show_default="none", metavar="SCENE")


def labels_option(help: str = "Vector labels of the --scene at the same position (any format GDAL reads; "
                              "FILE|layername=NAME picks a layer).") -> Any:
    """``--labels A.gpkg`` (repeatable)."""
    return typer.Option(None, "--labels", help=help, show_default="none", metavar="LABELS")


def scenes_list_option(help: str = "CSV of scenes: header scene,labels[,split][,layer]; paths relative to it.") -> Any:
    """``--scenes list.csv``."""
    return typer.Option(None, "--scenes", **EXISTING_FILE, help=help)


def class_field_option() -> Any:
    """``--class-field NAME``."""
    return typer.Option(None, "--class-field", help="Attribute holding each feature's class.",
                        show_default="one class named after the layer")


def classes_option() -> Any:
    """``--classes a,b``."""
    return typer.Option(None, "--classes", help="Classes to keep, in label order, e.g. car,truck.",
                        show_default="all found, sorted by name")


def point_box_option() -> Any:
    """``--point-box METRES``."""
    return typer.Option(None, "--point-box", min=0.01, metavar="METRES",
                        help="Side of the square box drawn around point features, metres.",
                        show_default="points refused")


def label_inputs(
    scene: list[str] | None, labels: list[str] | None, scenes: Path | None, *, class_field: str | None,
    classes: str | None, point_box: float | None, bands: str | None = None, in_channels: int | None = None,
) -> tuple[list[LabelSource], LabelOptions]:
    """The sources (``--scene/--labels`` pairs, then the rows of ``--scenes``) and label options."""
    from fsanet_geo.geodata.sources import pair_sources, read_scene_list
    from fsanet_geo.geodata.types import LabelOptions

    sources = pair_sources(scene or [], labels or [])
    if scenes is not None:
        sources += read_scene_list(scenes)
    if not sources:
        raise typer.BadParameter("name the scenes with --scene A.tif --labels A.gpkg or --scenes list.csv")
    wanted = parse_csv(classes, str, "--classes")
    band_list = parse_csv(bands, int, "--bands")
    options = LabelOptions(class_field=class_field, classes=tuple(wanted) if wanted else None, point_box=point_box,
                           bands=tuple(band_list) if band_list else None, in_channels=in_channels)
    return sources, options
