"""One ``fsanet eval`` call: which of the three modes the inputs ask for, the scoring, the files.

(a) a model on a dataset (``weights`` + ``data_root``, or ``ann`` + ``images``),
(b) a COCO results file against COCO ground truth (``ann`` + ``detections``),
(c) a detections vector layer against a truth layer in map space (``truth`` + ``detections``).

:func:`run_evaluation` checks every output path before any work, scores, writes the metrics
JSON, the precision-recall plot and (mode a) the model's COCO results, and returns an
:class:`EvalReport` whose ``payload`` is the one JSON document of every figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsanet_geo.errors import ConfigError
from fsanet_geo.evaluate.aitod_protocol import EvalResult

MODE_NAMES = {"map": "map space (--truth)", "model": "a model run (--weights)", "file": "a results file"}


@dataclass
class EvalRequest:
    """The inputs and options of one evaluation (paths as given; pixel options in pixels,
    ``pixel_size`` in CRS units). ``dataset`` None: not chosen (``aitod`` for a model run)."""

    weights: Path | None = None
    dataset: str | None = None
    data_root: Path | None = None
    split: str = "test"
    ann: Path | None = None
    images: Path | None = None
    detections: Path | None = None
    truth: Path | None = None
    resize_to: int | None = None
    batch_size: int = 2
    device: str = "auto"
    max_dets: int = 1500
    iou: float = 0.5
    score_threshold: float | None = None
    pixel_size: float | None = None
    class_column: str = "class_name"
    class_field: str | None = None
    score_column: str = "score"
    aoi: Path | None = None
    json_file: Path | None = None
    plot: Path | None = None
    save_detections: Path | None = None
    overwrite: bool = False

    def mode(self) -> str:
        """``model``, ``file`` or ``map``; :class:`ConfigError` naming a bad combination."""
        if self.truth is not None:
            extra = [n for n, v in (("--weights", self.weights), ("--dataset", self.dataset), ("--ann", self.ann))
                     if v is not None]
            if extra:
                raise ConfigError(f"--truth (map-space mode) cannot be combined with {', '.join(extra)}")
            if self.detections is None:
                raise ConfigError("--truth needs --detections (a vector layer)")
            return "map"
        if self.weights is not None:
            if self.detections is not None:
                raise ConfigError("give either --weights (run a model) or --detections (score a file), not both")
            pair = self.ann is not None and self.images is not None
            if self.dataset == "coco" and not pair:
                raise ConfigError("--dataset coco needs --ann gt.json and --images DIR")
            if self.dataset in (None, "aitod") and self.data_root is None and not pair:
                raise ConfigError("--dataset aitod needs --data-root DIR (or --ann and --images)")
            return "model"
        if self.save_detections is not None:
            raise ConfigError("--save-detections only applies when running a model (--weights)")
        if self.detections is not None:
            if self.ann is None:
                raise ConfigError("--detections needs --ann gt.json (COCO) or --truth layer (map space)")
            extra = [n for n, v in (("--dataset", self.dataset), ("--data-root", self.data_root),
                                    ("--images", self.images)) if v]
            if extra:
                raise ConfigError(f"scoring a results file (--ann + --detections) does not use {', '.join(extra)}")
            return "file"
        raise ConfigError("nothing to evaluate: give --weights + --data-root, --ann + --detections, "
                          "or --truth + --detections")


@dataclass
class EvalReport:
    """What one evaluation found.

    Attributes:
        mode: ``model``, ``file`` or ``map``.
        result: the AI-TOD-protocol result (map space: the scene as one image).
        map_result: the map-space counts (mode ``map`` only), a
            :class:`~fsanet_geo.evaluate.mapspace.MapEvalResult`.
        payload: every figure as one JSON-safe document (what ``--json`` prints).
        written: (what, path) of each file written.
    """

    mode: str
    result: EvalResult
    map_result: Any = None
    payload: dict[str, Any] = field(default_factory=dict)
    written: list[tuple[str, Path]] = field(default_factory=list)


def run_evaluation(request: EvalRequest, progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Score what ``request`` names; ``progress(done_images, total)`` during a model run."""
    from fsanet_geo.evaluate.plots import check_plot_path
    from fsanet_geo.io_utils import check_output_path

    r = request
    mode = r.mode()
    for out in (r.json_file, r.save_detections):
        if out is not None:
            check_output_path(out, overwrite=r.overwrite)
    if r.plot is not None:
        check_plot_path(r.plot, overwrite=r.overwrite)
    report = _score(r, mode, progress)
    if r.json_file is not None:
        from fsanet_geo.evaluate.aitod_protocol import save_json

        save_json(report.payload, r.json_file, overwrite=r.overwrite)
        report.written.append(("metrics", r.json_file))
    if r.plot is not None:
        from fsanet_geo.evaluate.plots import plot_pr_curves

        plot_pr_curves(report.result, r.plot, overwrite=r.overwrite)
        report.written.append(("precision-recall curves", r.plot))
    if r.save_detections is not None:
        report.written.append(("detections", r.save_detections))
    return report


def _score(r: EvalRequest, mode: str, progress: Callable[[int, int], None] | None) -> EvalReport:
    if mode == "map":
        from fsanet_geo.evaluate.mapspace import evaluate_vectors

        assert r.truth is not None and r.detections is not None
        found = evaluate_vectors(r.truth, r.detections, iou=r.iou, score_threshold=r.score_threshold,
                                 class_column=r.class_column, truth_class_field=r.class_field,
                                 score_column=r.score_column, pixel_size=r.pixel_size,
                                 aoi=None if r.aoi is None else str(r.aoi))
        inputs: dict[str, Any] = {"truth": str(r.truth), "detections": str(r.detections),
                                  "aoi": None if r.aoi is None else str(r.aoi)}
        return EvalReport(mode, found.coco, found, {**found.to_dict(), "inputs": inputs})
    if mode == "model":
        from fsanet_geo.evaluate.predict import evaluate_checkpoint

        assert r.weights is not None
        kind = r.dataset or "aitod"
        result = evaluate_checkpoint(r.weights, kind, data_root=r.data_root, split=r.split,  # type: ignore[arg-type]
                                     ann=r.ann, images=r.images, resize_to=r.resize_to, batch_size=r.batch_size,
                                     device=r.device, max_dets=r.max_dets, progress=progress,
                                     save_detections=r.save_detections, overwrite=r.overwrite)
        inputs = {"weights": str(r.weights), "dataset": kind, "split": r.split, "resize_to": r.resize_to}
    else:
        from fsanet_geo.evaluate.aitod_protocol import evaluate_coco

        assert r.ann is not None and r.detections is not None
        result = evaluate_coco(r.ann, r.detections, max_dets=r.max_dets)
        inputs = {"ann": str(r.ann), "detections": str(r.detections)}
    return EvalReport(mode, result, None, {"mode": mode, **result.to_dict(), "inputs": inputs})
