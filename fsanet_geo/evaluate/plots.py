"""Precision-recall curves of an :class:`EvalResult` (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsanet_geo.errors import OutputError
from fsanet_geo.evaluate.aitod_protocol import EvalResult
from fsanet_geo.io_utils import atomic_path, check_output_path

_FORMATS = {".png", ".pdf", ".svg", ".jpg", ".jpeg"}


def pr_curve(result: EvalResult, class_index: int, iou: float | None) -> np.ndarray | None:
    """Precision at the 101 recall points for one class (area all, last maxDets).

    ``iou=None`` averages over the IoU thresholds .50:.95. Returns None when the class has
    no ground truth (the evaluator's -1).
    """
    p = result.precision[:, :, class_index, 0, -1]  # [T, R]
    if iou is not None:
        t = int(np.argmin(np.abs(result.iou_thresholds - iou)))
        p = p[t : t + 1]
    if np.all(p <= -1):
        return None
    return np.where(p > -1, p, 0.0).mean(axis=0)


def check_plot_path(path: Path | str, *, overwrite: bool = False) -> Path:
    """Validate a plot output before any work: a known suffix, a folder that exists, and
    no existing file unless ``overwrite``. Raises :class:`OutputError` (or its subclass
    :class:`FileOverwriteError`)."""
    p = Path(path)
    if p.suffix.lower() not in _FORMATS:
        raise OutputError(f"cannot write a plot as {p.suffix or 'no suffix'}: use .png, .pdf or .svg")
    return check_output_path(p, overwrite=overwrite)


def plot_pr_curves(result: EvalResult, path: Path | str, *, overwrite: bool = False) -> Path:
    """Write a figure with two panels: PR curves per class at IoU 0.5 and averaged over
    IoU .50:.95 (area all, at the last maxDets). The legend gives each class's AP.

    The format follows the suffix (png, pdf, svg, jpg); the write is atomic.
    """
    path = check_plot_path(path, overwrite=overwrite)
    # An explicit Agg canvas: no GUI, and the global pyplot backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    recall = np.linspace(0.0, 1.0, result.precision.shape[1])
    fig = Figure(figsize=(11, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    panels = ((0.5, "IoU 0.50"), (None, "IoU 0.50:0.95 (mean)"))
    for i, (iou, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        drawn = 0
        for k, name in enumerate(result.class_names):
            curve = pr_curve(result, k, iou)
            if curve is None:
                continue
            ap = float(curve.mean())
            ax.plot(recall, curve, label=f"{name} ({ap:.3f})", linewidth=1.4)
            drawn += 1
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8, loc="upper right")
        else:
            ax.text(0.5, 0.5, "no ground truth", ha="center", va="center")
    fig.suptitle(f"Precision-recall per class (maxDets {result.max_dets[-1]})")
    fig.tight_layout()
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    return path
