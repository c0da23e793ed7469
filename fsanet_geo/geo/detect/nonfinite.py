"""Watch a predictor for NaN / Inf: a run whose model outputs are non-finite is warned about.

A model with broken weights usually yields NaN scores, which every score threshold drops:
the run would end with 0 detections and no word. :class:`NonFiniteWatch` looks at the
predictor's outputs and, for a torch module with a ``head`` sub-module (FSANet), at the raw
head outputs (logits, box distances) too, and warns once per run
(:class:`~fsanet_geo.errors.NonFiniteOutputWarning`).
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import torch

from fsanet_geo.errors import NonFiniteOutputWarning


def tensors_in(value: Any) -> Iterator[torch.Tensor]:
    """Every tensor inside ``value`` (tensors, lists, tuples, dicts, dataclasses), depth first."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from tensors_in(v)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from tensors_in(getattr(value, f.name))


def all_finite(value: Any) -> bool:
    """True when every floating tensor inside ``value`` is free of NaN and Inf."""
    return all(bool(torch.isfinite(t).all()) for t in tensors_in(value) if t.is_floating_point())


class NonFiniteWatch:
    """Checks a predictor's outputs (and its head's raw outputs) and warns once when non-finite."""

    def __init__(self, predictor: Any) -> None:
        self._head_bad: list[bool] = [False]  # shared with the hook, which must not hold ``self``
        self.found: str | None = None
        self.warned = False
        head = getattr(predictor, "head", None)
        if isinstance(predictor, torch.nn.Module) and isinstance(head, torch.nn.Module):
            flag = self._head_bad

            def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
                if not flag[0] and not all_finite(output):
                    flag[0] = True

            handle = head.register_forward_hook(hook)
            weakref.finalize(self, handle.remove)  # the hook goes with the run

    def check(self, outputs: Any) -> None:
        """After a predictor call on ``outputs``: warn (once) if it or its head saw NaN / Inf."""
        if self.found is None and self._head_bad[0]:
            self.found = "the model's raw head outputs"
        if self.found is None and not all_finite(outputs):
            self.found = "the predictor's detections"
        if self.found is not None and not self.warned:
            self.warned = True
            warnings.warn(
                f"{self.found} hold NaN or Inf values: detections are missing or wrong "
                "(broken weights, or an input the model cannot handle)",
                NonFiniteOutputWarning,
                stacklevel=3,
            )
