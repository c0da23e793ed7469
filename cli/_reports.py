"""The reports of ``fsanet eval`` and ``fsanet data check``: tables on stdout (each fits 80
columns), notes on stderr; or, with ``--json``, one JSON document of the same figures on stdout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from fsanet_cli._render import data_table, eprint, note_line, percent, print_data

if TYPE_CHECKING:
    from fsanet_geo.evaluate.aitod_protocol import EvalResult
    from fsanet_geo.geodata.types import LabelSet
    from fsanet_geo.evaluate.evaluation import EvalReport
    from fsanet_geo.evaluate.map_area import Extent, ScoredArea
    from fsanet_geo.evaluate.mapspace import MapEvalResult, MatchCounts
    from fsanet_geo.geo.detect.dry_run import DryRunReport


def print_json(document: Any) -> None:
    """One JSON document on stdout."""
    typer.echo(json.dumps(document, indent=2))


def render_report(report: EvalReport, *, as_json: bool) -> None:
    """``fsanet eval``: the tables (or ``--json``'s document) on stdout, then notes and files written on stderr."""
    if as_json:
        print_json(report.payload)
    elif report.map_result is not None:
        _print_map_tables(report.map_result)
    else:
        _print_coco_tables(report.result)
    if report.map_result is not None:
        _map_notes(report.map_result)
    for what, path in report.written:
        eprint(f"{what} written to {path}", soft_wrap=True)


def _print_coco_tables(result: EvalResult, *, per_class: bool = True) -> None:
    from fsanet_geo.evaluate.aitod_protocol import HEADLINE_KEYS

    keys = [k for k in (*HEADLINE_KEYS, "AR") if k in result.stats]
    head = data_table(f"AI-TOD protocol (%), maxDets {result.max_dets[-1]}", keys)
    head.add_row(*(percent(result.stats[k]) for k in keys))
    print_data(head)
    if not per_class:
        return
    per = data_table("AP per class (%); '-': no ground truth", ["class", "AP", "AP50"])
    ap50 = result.per_class_ap50()
    for name, ap in result.per_class.items():
        per.add_row(name, percent(ap), percent(ap50[name]))
    print_data(per)
    counts = result.counts
    print_data(f"{counts.get('images', 0)} images, {counts.get('ground_truth', 0)} objects, "
               f"{counts.get('detections', 0)} detections")


def _rates(c: MatchCounts) -> list[str]:
    """precision, recall, F1 with three decimals; '-' where undefined (no detections, no truth)."""
    precision = f"{c.precision:.3f}" if c.tp + c.fp else "-"
    recall = f"{c.recall:.3f}" if c.tp + c.fn else "-"
    return [precision, recall, f"{c.f1:.3f}" if c.tp + c.fp and c.tp + c.fn else "-"]


def _counts(c: MatchCounts) -> list[str]:
    return [str(c.tp + c.fn), str(c.tp + c.fp), str(c.tp), str(c.fp), str(c.fn)]


def _print_map_tables(result: MapEvalResult) -> None:
    from fsanet_geo.evaluate.aitod_protocol import AREA_RANGES

    cut = f", score >= {result.score_threshold:g}" if result.score_threshold is not None else ""
    columns = ["class", "truth", "dets", "TP", "FP", "FN", "prec.", "recall", "F1", "AP %"]
    table = data_table(f"Map space, IoU {result.iou:g}{cut}", columns)
    for name, c in result.per_class.items():
        table.add_row(name, *_counts(c), *_rates(c), percent(result.coco.per_class.get(name, -1.0)))
    table.add_row("all", *_counts(result.overall), *_rates(result.overall), percent(result.coco.stats["AP"]),
                  style="bold")
    print_data(table)
    if result.per_size:
        sizes = data_table("By AI-TOD size (square root of box area, px); '-': none there",
                           ["range", "truth", "dets", "TP", "FP", "FN", "prec.", "recall"])
        for label, c in result.per_size.items():
            low, high = (round(v**0.5) for v in AREA_RANGES[label])
            span = f"{label} ({low}-{high} px)" if label != "medium" else f"{label} (>= {low} px)"
            sizes.add_row(span, *_counts(c), *_rates(c)[:2])
        print_data(sizes)
    _print_coco_tables(result.coco, per_class=False)


def _map_notes(result: MapEvalResult) -> None:
    if result.area is not None:
        note_line(_area_note(result.area, result.crs))
    only = []
    if result.only_in_truth:
        only.append(f"classes only in the truth: {', '.join(result.only_in_truth)}")
    if result.only_in_detections:
        only.append(f"only in the detections: {', '.join(result.only_in_detections)}")
    if only:
        note_line("; ".join(only) + " (names must match exactly; --class-field names the truth's attribute)")
    if result.pixel_size is None:
        note_line("pixel size unknown: no very tiny/tiny/small/medium split (give --pixel-size)")
    if any(result.dropped.values()):
        note_line(f"features without geometry or class left out: {result.dropped}")


def _area_note(area: ScoredArea, crs: str | None) -> str:
    """One line: which area was scored, the two extents, and what fell outside."""
    unit = f" ({crs})" if crs else " (pixels)"
    source = {"aoi": "the area of interest", "footprint": "the detections' scene footprint",
              "common extent": "the common area of the two layers"}[area.source]
    return (f"scored {source} only, {_extent(area.extent)}{unit}: truth extent {_extent(area.truth_extent)}, "
            f"detections extent {_extent(area.detections_extent)}; left out {area.truth_outside} truth and "
            f"{area.detections_outside} detections centred outside")


def _extent(extent: Extent | None) -> str:
    return "empty" if extent is None else "[" + ", ".join(f"{v:.1f}" for v in extent) + "]"



_LABEL_COLUMNS = (("read", "read"), ("kept", "kept"), ("clipped", "clip"), ("outside", "out"),
                  ("on_nodata", "nodata"), ("empty", "empty"), ("other_class", "class"), ("points_refused", "points"))


def render_label_check(label_set: LabelSet, *, aoi: str | None, as_json: bool) -> None:
    """``fsanet data check --scene/--labels``: per scene the features read, kept and dropped by
    reason, the kept objects per class and AI-TOD size, their sizes and the preset built for them."""
    from fsanet_geo.evaluate.aitod_protocol import AREA_RANGES
    from fsanet_geo.geo.pixels.remote import location_name
    from fsanet_geo.geodata.label_stats import SIZE_RANGES, label_check_summary

    summary = label_check_summary(label_set)
    if as_json:
        print_json({**summary, "aoi": aoi})
        return
    with_split = any(scene.source.split for scene in label_set.scenes)  # a --scenes list's split column
    head = ["scene", "labels", *(["split"] if with_split else []), *(title for _, title in _LABEL_COLUMNS)]
    scenes = data_table("Labels per scene: kept (clip: cut by the edge) and dropped (out: centred outside, "
                        "nodata: on nodata, empty, class: other class, points: points refused)", head)
    for scene, row in zip(label_set.scenes, summary["scenes"]):
        layer = location_name(scene.source.labels) + (f"|{scene.source.layer}" if scene.source.layer else "")
        split = [scene.source.split or "auto"] if with_split else []
        scenes.add_row(location_name(scene.info.path), layer, *split, *(str(row[k]) for k, _ in _LABEL_COLUMNS))
    if len(label_set.scenes) > 1:
        total = summary["total"]
        scenes.add_row("all", "", *([""] if with_split else []), *(str(total[k]) for k, _ in _LABEL_COLUMNS),
                       style="bold")
    print_data(scenes)
    spans = [f"{k} ({low}-{high})" if k != "medium" else f"{k} (>= {low})"
             for k, (low, high) in ((k, (round(v**0.5) for v in AREA_RANGES[k])) for k in SIZE_RANGES)]
    per_class = data_table("Kept objects per class and AI-TOD size (square root of box area, px)",
                           ["class", *spans, "total"])
    for name, row in summary["classes"].items():
        per_class.add_row(name, *(str(v) for v in row.values()))
    print_data(per_class)
    print_object_size(summary)
    if aoi is not None:
        eprint(f"labelled area: {aoi} (objects centred outside it counted as outside)", soft_wrap=True)


def print_object_size(summary: dict[str, Any]) -> None:
    """The line on the objects' sizes (``summary["object_size"]``, pixels) and the preset built for them."""
    size = summary["object_size"]
    if size is not None:
        print_data(f"object size (square root of box area): median {size['median_px']:.1f} px, 10th-90th "
                   f"percentile {size['p10_px']:.1f}-{size['p90_px']:.1f} px; preset: {summary['preset']} "
                   f"({summary['preset_reason']})")


def render_dry_run(report: DryRunReport, *, as_json: bool) -> None:
    """``fsanet detect --dry-run``: per scene and in total the tiles to read and skip, the
    bytes of their blocks and the estimated time, as a table (80 columns) or one JSON document
    on stdout; notes on stderr."""
    from fsanet_cli._render import duration, plural

    if as_json:
        print_json(report.payload())
    else:
        table = data_table(f"Dry run: {report.tile_size} px tiles, {report.overlap} px overlap; nothing run",
                           ["scene", "tiles", "read", "off aoi", "absent", "empty", "blocks", "MB"])
        for cost in [*report.scenes, report.total]:
            table.add_row(cost.scene, f"{cost.tiles:,}", f"{cost.read:,}", f"{cost.skipped_aoi:,}",
                          f"{cost.skipped_nodata:,}", f"{cost.empty:,}",
                          "-" if cost.blocks is None else f"{cost.blocks:,}",
                          "-" if cost.bytes is None else f"{cost.bytes / 1e6:,.2f}")
        print_data(table)
        total = report.total
        fetch = "to fetch" if total.remote else "to read"
        size = "unknown" if total.bytes is None else f"{total.bytes / 1e6:,.2f} MB"
        empty = f" ({total.empty:,} of them empty in an overview)" if total.empty else ""
        print_data(f"{plural(total.read, 'tile')} to read{empty}, {size} of blocks {fetch}")
        print_data(f"estimated {duration(report.seconds)} of model time on {report.device} at "
                   f"{report.rate.tiles_per_s:.3g} tiles/s")
        print_data(f"({report.rate.detail})")
    for cost in report.scenes:
        if cost.set_aside:
            note_line(f"{cost.scene} would be set aside: {cost.set_aside}")
    for note in report.notes:
        note_line(note)
