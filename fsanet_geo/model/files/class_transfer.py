"""Start a model for some classes from a checkpoint trained on others (fine-tuning).

Every parameter and buffer is copied strictly (same names, same shapes) except the
classifier: the tensors whose first dimension is the class axis by construction, the
``cls_logits`` layer of every head (a module with a ``num_classes`` attribute and a
``cls_logits`` child: weight Tensor[K, C, 3, 3], bias Tensor[K]). Their rows are matched by
class *name*, case-sensitively ("Vehicle" and "vehicle" are two classes; the report points
out names that differ only in case, it never merges them):

- a class the checkpoint knows gets the checkpoint's row, in the run's order whatever the
  checkpoint's order;
- a new class keeps the model's freshly initialised row (weights Normal(0, 0.01), bias at
  the head's prior probability 0.01, as the head initialises it);
- the checkpoint's classes absent from the run are dropped.

Dimension letters: K = the run's classes, S = the checkpoint's classes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fsanet_geo.errors import ConfigError
from fsanet_geo.model.config import ModelConfig

CLASSIFIER_LAYER = "cls_logits"
"""The name of the per-class output layer in every head (its output channels are the classes)."""

RECALIBRATED_FIELDS: tuple[str, ...] = ("score_thr", "class_score_thr", "min_score")
"""Settings a fine-tuned model takes from its preset, not from the checkpoint: score thresholds
calibrated on the checkpoint's classes and scores (the demo's 0.35) do not carry over to a
model trained further on other classes (the run calibrates again where it validates)."""

_LISTED = 8  # class names listed in a report before "... (N more)"
_PROBLEMS = 3  # offending tensor names listed in an error


@dataclass(frozen=True)
class ClassTransfer:
    """What a fine-tuned model kept of its checkpoint's classifier.

    ``kept`` and ``new`` are in the run's class order, ``dropped`` in the checkpoint's;
    ``reordered`` is true when the kept classes come in another relative order than in the
    checkpoint (their rows were permuted).
    """

    source: str
    preset: str
    kept: tuple[str, ...]
    new: tuple[str, ...]
    dropped: tuple[str, ...]
    reordered: bool = False

    def describe(self) -> str:
        """One line for the user, e.g. ``fine-tuning from demo.safetensors (fsanet_r18_tiny):
        kept vehicle; new: boat, dock; dropped 7 classes: airplane, ...``."""
        parts = [f"kept {_listed(self.kept)}" + (" (rows reordered to this run's class order)"
                                                  if self.reordered else "")]
        if self.new:
            parts.append(f"new: {_listed(self.new)}")
        if self.dropped:
            noun = "class" if len(self.dropped) == 1 else "classes"
            parts.append(f"dropped {len(self.dropped)} {noun}: {_listed(self.dropped)}")
        folded = {name.casefold(): name for name in self.dropped}
        near = [f"{name!r} is not {folded[name.casefold()]!r}" for name in self.new if name.casefold() in folded]
        if near:
            parts.append(f"class names match case-sensitively ({', '.join(near)})")
        return f"fine-tuning from {self.source} ({self.preset}): " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: for the metrics log and the checkpoints' metadata."""
        return {"init_weights": self.source, "preset": self.preset, "kept": list(self.kept),
                "new": list(self.new), "dropped": list(self.dropped), "reordered": self.reordered}


def _listed(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else "")


def classifier_tensors(model: nn.Module) -> list[str]:
    """State-dict names of the tensors whose dim 0 is the class axis: the ``cls_logits``
    weight and bias of every head (found by construction, never by shape).

    Raises :class:`ConfigError` when the model has no such head."""
    names = []
    for prefix, module in model.named_modules():
        layer = getattr(module, CLASSIFIER_LAYER, None)
        if not isinstance(layer, nn.Module) or not isinstance(getattr(module, "num_classes", None), int):
            continue
        for key, tensor in layer.state_dict().items():
            if tensor.shape[0] != module.num_classes:  # a head built against its own contract
                raise ConfigError(f"{prefix}.{CLASSIFIER_LAYER}.{key} has {tensor.shape[0]} rows for "
                                  f"{module.num_classes} classes")
            names.append(f"{prefix}.{CLASSIFIER_LAYER}.{key}" if prefix else f"{CLASSIFIER_LAYER}.{key}")
    if not names:
        raise ConfigError(f"{type(model).__name__} has no classifier layer ({CLASSIFIER_LAYER!r} of a head)")
    return names


def finetune_config(source: ModelConfig, class_names: Sequence[str], **overrides: Any) -> ModelConfig:
    """The config of a model fine-tuned from a checkpoint whose config is ``source``, for
    ``class_names``: the checkpoint's architecture, input size, normalisation, targets and
    NMS (its weights were trained with them), the preset's :data:`RECALIBRATED_FIELDS`,
    then ``overrides`` (the run's own settings).

    Raises :class:`ConfigError` for a checkpoint of no known preset (``custom``)."""
    from fsanet_geo.model.presets import preset_config

    check_finetunable(source)
    reserved = {"preset", "num_classes", "class_names", *RECALIBRATED_FIELDS}
    if "in_channels" in overrides:  # other bands: the preset's normalisation for them, unless given
        reserved |= {"image_mean", "image_std"}
    carried = {k: v for k, v in source.to_dict().items() if k not in reserved}
    return preset_config(source.preset, len(class_names), list(class_names), **{**carried, **overrides})


def check_finetunable(source: ModelConfig, path: str = "the checkpoint") -> None:
    """:class:`ConfigError` unless ``source`` (a checkpoint's config) is of a known preset."""
    from fsanet_geo.model.presets import list_presets

    if source.preset not in list_presets():
        raise ConfigError(f"--init-weights {path} was built from preset {source.preset!r}, not one of "
                          f"{', '.join(list_presets())}: fine-tuning starts from a preset's checkpoint")


def transfer_weights(
    model: nn.Module,
    source_state: Mapping[str, Tensor],
    source_classes: Sequence[str],
    *,
    source: str = "the checkpoint",
    preset: str = "",
) -> ClassTransfer:
    """Copy ``source_state`` into ``model`` (in place) as the module docstring says.

    ``model`` has ``class_names`` (K names, the run's order) and is freshly initialised;
    ``source_classes`` are the S names of the checkpoint's classifier rows. Nothing is
    copied unless everything fits: missing or unexpected tensors, and a shape that differs
    (outside the class axis of the classifier), are a :class:`ConfigError` naming the
    tensor and both shapes.
    """
    ours = model.state_dict()
    classifier = set(classifier_tensors(model))
    _check_fit(ours, source_state, classifier, len(source_classes), source)
    run_classes = list(model.class_names)  # type: ignore[attr-defined]
    source_index = {name: i for i, name in enumerate(source_classes)}
    rows = [(i, source_index[name]) for i, name in enumerate(run_classes) if name in source_index]
    run_rows = torch.tensor([i for i, _ in rows], dtype=torch.long)
    source_rows = torch.tensor([j for _, j in rows], dtype=torch.long)
    with torch.no_grad():
        for name, tensor in ours.items():  # state-dict tensors share storage with the model
            theirs = source_state[name].to(tensor.device)
            if name not in classifier:
                tensor.copy_(theirs)
            elif rows:
                tensor[run_rows] = theirs[source_rows].to(tensor.dtype)
    kept = {run_classes[i] for i, _ in rows}
    return ClassTransfer(
        source=source, preset=preset,
        kept=tuple(run_classes[i] for i, _ in rows),
        new=tuple(name for name in run_classes if name not in kept),
        dropped=tuple(name for name in source_classes if name not in kept),
        reordered=source_rows.tolist() != sorted(source_rows.tolist()),
    )


def _check_fit(ours: Mapping[str, Tensor], theirs: Mapping[str, Tensor], classifier: set[str],
               source_rows: int, source: str) -> None:
    """:class:`ConfigError` naming the first few tensors of ``theirs`` that do not fit ``ours``."""
    problems = [f"tensor {k} is missing" for k in ours if k not in theirs]
    problems += [f"tensor {k} is not in this run's model" for k in theirs if k not in ours]
    for key, tensor in ours.items():
        if key not in theirs:
            continue
        expected = (source_rows, *tensor.shape[1:]) if key in classifier else tuple(tensor.shape)
        found = tuple(theirs[key].shape)
        if found != expected:
            problems.append(f"tensor {key} has shape {found} there but {expected} in this run's model")
    if problems:
        more = f" (and {len(problems) - _PROBLEMS} more)" if len(problems) > _PROBLEMS else ""
        raise ConfigError(f"--init-weights {source} does not fit this run's model: "
                          f"{'; '.join(problems[:_PROBLEMS])}{more}")


def load_with_class_transfer(model: nn.Module, path: str | os.PathLike[str]) -> ClassTransfer:
    """Start ``model`` from the checkpoint at ``path`` (read without unpickling, through
    :func:`~fsanet_geo.model.files.checkpoint.load_model`) with :func:`transfer_weights`.

    Raises :class:`CheckpointError` for an unreadable checkpoint and :class:`ConfigError`
    when its preset differs from ``model``'s or its tensors do not fit."""
    from fsanet_geo.model.files.checkpoint import load_model, read_checkpoint_config

    theirs = read_checkpoint_config(path)  # the header only: refuse before reading the weights
    ours: ModelConfig = model.config  # type: ignore[assignment]
    if theirs.preset != ours.preset:
        raise ConfigError(preset_mismatch(os.fspath(path), theirs.preset, ours.preset))
    checkpoint = load_model(path, "cpu")
    return transfer_weights(model, checkpoint.state_dict(), theirs.class_names,
                            source=os.fspath(path), preset=theirs.preset)


def preset_mismatch(path: str, checkpoint_preset: str, run_preset: str) -> str:
    """The one message for ``--model`` naming another preset than the ``--init-weights`` checkpoint's."""
    return (f"--init-weights {path} is a {checkpoint_preset}, but --model is {run_preset}: "
            f"leave --model out (or give --model {checkpoint_preset}) to fine-tune it")
