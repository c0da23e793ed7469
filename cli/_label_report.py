"""Rendering of ``fsanet data check --scene/--labels``: what each scene's labels became, and the kept
objects per class and AI-TOD size range (tables on stderr, like the COCO check's lines)."""

from __future__ import annotations

from rich.table import Table

from fsanet_geo.evaluate.aitod_protocol import AREA_RANGES
from fsanet_geo.geo.pixels.remote import location_name
from fsanet_geo.geodata.label_stats import SIZE_RANGES, set_size_range_counts, total_counts
from fsanet_geo.geodata.types import LabelCounts, LabelSet

from fsanet_cli._render import eprint, print_table

_COLUMNS = (("read", "read"), ("kept", "kept"), ("clipped", "clipped"), ("outside", "outside"),
            ("on_nodata", "on nodata"), ("empty", "empty"), ("other_class", "other class"),
            ("points_refused", "points refused"))


def print_label_check(label_set: LabelSet, *, aoi: str | None = None) -> None:
    """The per-scene table (read, kept, clipped, dropped by reason), then objects per class and size."""
    scenes = Table(title="Labels per scene (kept includes clipped; the rest were dropped)", title_justify="left")
    with_split = any(scene.source.split for scene in label_set.scenes)  # a --scenes list's split column
    scenes.add_column("scene")
    scenes.add_column("labels")
    if with_split:
        scenes.add_column("split")
    for _, title in _COLUMNS:
        scenes.add_column(title, justify="right")
    for scene in label_set.scenes:
        layer = location_name(scene.source.labels) + (f"|{scene.source.layer}" if scene.source.layer else "")
        split = [scene.source.split or "auto"] if with_split else []
        scenes.add_row(location_name(scene.info.path), layer, *split, *_cells(scene.counts))
    if len(label_set.scenes) > 1:
        scenes.add_row("all", "", *([""] if with_split else []), *_cells(total_counts(label_set)), style="bold")
    print_table(scenes)
    sizes = set_size_range_counts(label_set)
    per_class = Table(title="Kept objects per class and AI-TOD size (square root of box area, pixels)",
                      title_justify="left")
    per_class.add_column("class")
    for key in SIZE_RANGES:
        low, high = (round(v**0.5) for v in AREA_RANGES[key])
        per_class.add_column(f"{key} ({low}-{high})" if key != "medium" else f"{key} (>= {low})", justify="right")
    per_class.add_column("total", justify="right")
    for name, row in zip(label_set.class_names, sizes.tolist()):
        per_class.add_row(name, *(str(v) for v in row), str(sum(row)))
    print_table(per_class)
    if aoi is not None:
        eprint(f"labelled area: {aoi} (objects centred outside it counted as outside)", soft_wrap=True)


def _cells(counts: LabelCounts) -> list[str]:
    values = counts.to_dict()
    return [str(values[key]) for key, _ in _COLUMNS]
