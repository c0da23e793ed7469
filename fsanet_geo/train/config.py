"""Training settings (:class:`TrainConfig`) and the paper's recipes (:func:`recipe_for`).

Learning rate and batch size (the linear scaling rule): the recipes give a *reference*
rate for a reference batch of 8 images (the paper: 4 images per GPU x 2 GPUs,
SGD lr 0.002). ``batch_size`` is the number of images per process and step; the
effective batch is ``batch_size * world_size`` (world size 1 without ``torchrun``).
When ``lr`` is not given, the rate used is ``reference_lr * effective_batch /
reference_batch``; an explicit ``lr`` is used as is.

Weight decay is applied to every trainable parameter (norm layers and biases
included), as MMDetection 2.x's default ``schedule_1x`` optimiser did for the paper's
SGD recipe (no ``paramwise_cfg``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsanet_geo.config_fields import check_known_fields
from fsanet_geo.errors import ConfigError
from fsanet_geo.train.scene_config import SceneData

DATASET_KINDS = ("aitod", "coco", "scenes")
OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class Recipe:
    """An optimiser and schedule recipe; ``lr`` is for a batch of ``batch_size`` images."""

    optimizer: str
    lr: float
    batch_size: int
    momentum: float
    weight_decay: float
    epochs: int
    lr_steps: tuple[int, ...]
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3.0
    grad_clip: float | None = 35.0


#: The paper's ResNet recipe (AI-TOD, 12 epochs).
SGD_RECIPE = Recipe(
    optimizer="sgd", lr=0.002, batch_size=8, momentum=0.9, weight_decay=1e-4,
    epochs=12, lr_steps=(8, 11),
)
#: The paper's Swin-T recipe (24 epochs).
ADAMW_RECIPE = Recipe(
    optimizer="adamw", lr=1e-4, batch_size=8, momentum=0.9, weight_decay=0.05,
    epochs=24, lr_steps=(16, 22),
)


def recipe_for(preset: str) -> Recipe:
    """The paper's recipe for a model preset: AdamW for Swin presets, SGD otherwise."""
    return ADAMW_RECIPE if "swin" in preset.lower() else SGD_RECIPE


def scale_steps(steps: Sequence[int], from_epochs: int, to_epochs: int) -> tuple[int, ...]:
    """Move step epochs proportionally to a different run length (8, 11 of 12 -> 16, 22 of 24)."""
    if to_epochs == from_epochs:
        return tuple(steps)
    return tuple(max(1, round(s * to_epochs / from_epochs)) for s in steps)


#: Settings that must not change when a run is resumed (they define the schedule,
#: the batches or the model). Everything else (epochs, max_iters, device, workers,
#: data paths, intervals) may change.
RESUME_FIXED = (
    "model", "dataset", "batch_size", "lr", "reference_lr", "reference_batch",
    "optimizer", "momentum", "weight_decay", "lr_steps", "lr_gamma", "warmup_iters",
    "warmup_ratio", "grad_clip", "input_size", "resize_to", "flip_h", "flip_v", "rot90", "seed", "model_overrides",
)


@dataclass
class TrainConfig:
    """Everything a training run needs; JSON-safe through :meth:`to_dict`.

    Paths are kept as strings. ``lr=None`` applies the linear scaling rule (module
    docstring). ``lr_steps`` are 0-based epochs at which the rate is multiplied by
    ``lr_gamma``. ``max_iters`` caps the global iteration count (smoke tests, or a
    run split in parts: stop at N, then ``resume`` with a larger cap). ``val_interval``
    0 disables validation. ``input_size`` None keeps the model preset's size; it is the
    side of the random native-scale training crops (and the model's default tile size).
    ``resize_to`` (pixels, None: never) resizes every image's longer side first.
    """

    model: str | None = None
    """The model preset; None (the default): the ``init_weights`` checkpoint's preset, else
    ``fsanet_r50`` (:func:`~fsanet_geo.model.files.preset_choice.preset_for_run`), resolved when the config
    is made, so a made config always names its preset."""
    dataset: str = "aitod"
    data_root: str | None = None
    train_split: str = "trainval"
    val_split: str | None = "test"
    train_ann: str | None = None
    train_images: str | None = None
    val_ann: str | None = None
    val_images: str | None = None
    epochs: int = SGD_RECIPE.epochs
    batch_size: int = SGD_RECIPE.batch_size
    lr: float | None = None
    reference_lr: float = SGD_RECIPE.lr
    reference_batch: int = SGD_RECIPE.batch_size
    optimizer: str = SGD_RECIPE.optimizer
    momentum: float = SGD_RECIPE.momentum
    weight_decay: float = SGD_RECIPE.weight_decay
    lr_steps: tuple[int, ...] = SGD_RECIPE.lr_steps
    lr_gamma: float = 0.1
    warmup_iters: int = SGD_RECIPE.warmup_iters
    warmup_ratio: float = SGD_RECIPE.warmup_ratio
    grad_clip: float | None = SGD_RECIPE.grad_clip
    input_size: int | None = None
    resize_to: int | None = None
    flip_h: float = 0.5
    flip_v: float = 0.0
    rot90: bool = False
    num_workers: int = 2
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    deterministic: bool = False
    work_dir: str = "work_dirs/fsanet"
    val_interval: int = 1
    save_interval: int = 1
    keep_epochs: int = 0
    """Keep only the newest N ``epoch_N`` checkpoints (0: keep all)."""
    log_interval: int = 1
    checkpoint_every: int | None = None
    """Also write ``last`` every this many iterations (mid-epoch); None: at epoch ends only."""
    max_iters: int | None = None
    pretrained_backbone: str | bool = False
    init_weights: str | None = None
    """A fsanet-geo checkpoint whose weights start the run (fine-tuning): its preset and
    architecture; classifier rows matched by class name (:mod:`fsanet_geo.model.files.class_transfer`)."""
    allow_frozen_norm_from_scratch: bool = False
    """Train a frozen-BatchNorm preset from random init anyway (refused otherwise; only to
    reproduce the recorded ablation benchmark, which did so)."""
    resume: bool = False
    overwrite: bool = False
    model_overrides: dict[str, Any] = field(default_factory=dict)
    gsd: float | None = None
    """Metres per pixel of the training images, recorded in the checkpoints (None: unknown;
    scene runs measure it from their rasters)."""
    scene_data: dict[str, Any] | None = None
    """``dataset="scenes"``: the scenes, labels and split (:class:`~fsanet_geo.train.scene_config.SceneData` as a dict)."""

    def __post_init__(self) -> None:
        for name in ("data_root", "train_ann", "train_images", "val_ann", "val_images", "work_dir"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))
        if isinstance(self.init_weights, os.PathLike):
            self.init_weights = os.fspath(self.init_weights)
        if self.model is None:
            from fsanet_geo.model.files.preset_choice import preset_for_run

            self.model = preset_for_run(None, self.init_weights,
                                        scratch=self.dataset == "scenes" and not self.pretrained_backbone)
        if isinstance(self.pretrained_backbone, os.PathLike):
            self.pretrained_backbone = os.fspath(self.pretrained_backbone)
        self.lr_steps = tuple(int(s) for s in self.lr_steps)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting."""
        if self.dataset not in DATASET_KINDS:
            raise ConfigError(f"dataset must be one of {', '.join(DATASET_KINDS)}, got {self.dataset!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size,
                    "reference_batch": self.reference_batch, "log_interval": self.log_interval,
                    "save_interval": self.save_interval}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if self.keep_epochs < 0:
            raise ConfigError(f"keep_epochs must be >= 0 (0 keeps all), got {self.keep_epochs}")
        for name, value in {"lr": self.lr, "reference_lr": self.reference_lr}.items():
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, got {self.checkpoint_every}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ConfigError(f"max_iters must be >= 1, got {self.max_iters}")
        for name, value in {"val_interval": self.val_interval, "num_workers": self.num_workers,
                            "warmup_iters": self.warmup_iters,
                            "weight_decay": self.weight_decay}.items():
            if value < 0:
                raise ConfigError(f"{name} must be >= 0, got {value}")
        for name, value in {"flip_h": self.flip_h, "flip_v": self.flip_v,
                            "warmup_ratio": self.warmup_ratio, "momentum": self.momentum}.items():
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.input_size is not None and (self.input_size < 32 or self.input_size % 32):
            raise ConfigError(f"input_size must be a multiple of 32 and >= 32, got {self.input_size}")
        if self.resize_to is not None and self.resize_to < 32:
            raise ConfigError(f"resize_to must be >= 32 px, got {self.resize_to}")
        if any(s < 0 for s in self.lr_steps) or list(self.lr_steps) != sorted(self.lr_steps):
            raise ConfigError(f"lr_steps must be increasing epochs >= 0, got {list(self.lr_steps)}")
        if self.dataset == "scenes":
            if self.scene_data is None:
                raise ConfigError("training on scenes needs --scene and --labels (or --scenes LIST.csv)")
            self.scenes.validate()
        if self.dataset == "coco" and not (self.train_ann and self.train_images):
            raise ConfigError("a COCO dataset needs both its annotation JSON and its image folder")
        if self.dataset == "aitod" and not self.data_root and not (self.train_ann and self.train_images):
            raise ConfigError("an AI-TOD dataset needs a data root (or an annotation JSON and images)")
        for ann_name, ann, images_name, images in (
            ("--ann", self.train_ann, "--images", self.train_images),
            ("--val-ann", self.val_ann, "--val-images", self.val_images),
        ):
            if bool(ann) != bool(images):
                given, missing = (ann_name, images_name) if ann else (images_name, ann_name)
                raise ConfigError(f"{given} needs {missing} too (an annotation JSON and its image folder)")

    def lr_for(self, world_size: int = 1) -> float:
        """The learning rate used: ``lr`` if given, else the linear scaling rule."""
        if self.lr is not None:
            return self.lr
        return self.reference_lr * self.batch_size * world_size / self.reference_batch

    @property
    def validates(self) -> bool:
        """Whether validation is enabled (an interval and a validation split)."""
        if self.val_interval == 0:
            return False
        if self.val_ann and self.val_images:
            return True
        if self.dataset == "scenes":
            return self.scenes.validates
        return self.dataset == "aitod" and bool(self.val_split) and bool(self.data_root)

    @classmethod
    def for_preset(
        cls,
        model: str | None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        **fields: Any,
    ) -> TrainConfig:
        """A config with :func:`recipe_for`'s recipe for ``model``.

        A different ``epochs`` moves the decay steps proportionally; a different
        ``batch_size`` without ``lr`` scales the rate linearly (module docstring).
        ``model`` None: the ``init_weights`` checkpoint's preset, else ``fsanet_r18_tiny`` for
        a scene run without a pretrained backbone, else ``fsanet_r50``; a ``model`` other than
        that checkpoint's is a :class:`ConfigError` naming both.
        """
        from fsanet_geo.model.files.preset_choice import preset_for_run

        scratch = fields.get("dataset") == "scenes" and not fields.get("pretrained_backbone")
        model = preset_for_run(model, fields.get("init_weights"), scratch=scratch)
        recipe = recipe_for(model)
        run_epochs = recipe.epochs if epochs is None else epochs
        recipe_fields: dict[str, Any] = {
            "optimizer": recipe.optimizer,
            "reference_lr": recipe.lr,
            "reference_batch": recipe.batch_size,
            "momentum": recipe.momentum,
            "weight_decay": recipe.weight_decay,
            "lr_steps": scale_steps(recipe.lr_steps, recipe.epochs, run_epochs),
            "warmup_iters": recipe.warmup_iters,
            "warmup_ratio": recipe.warmup_ratio,
            "grad_clip": recipe.grad_clip,
        }
        recipe_fields.update(fields)
        return cls(
            model=model,
            epochs=run_epochs,
            batch_size=recipe.batch_size if batch_size is None else batch_size,
            lr=lr,
            **recipe_fields,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["lr_steps"] = list(self.lr_steps)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError`."""
        check_known_fields(cls, data, "training settings")
        values = dict(data)
        if "lr_steps" in values:
            values["lr_steps"] = tuple(values["lr_steps"])
        return cls(**values)

    def resume_mismatches(self, saved: TrainConfig) -> list[str]:
        """Names of :data:`RESUME_FIXED` settings (and scene settings) that differ from ``saved``."""
        names = [name for name in RESUME_FIXED if getattr(self, name) != getattr(saved, name)]
        if self.scene_data is not None and saved.scene_data is not None:
            names += self.scenes.mismatches(saved.scenes)
        return names

    def setting(self, name: str) -> Any:
        """The value of setting ``name``: a field, or a scene setting of a scene-trained run."""
        if hasattr(self, name) or self.scene_data is None:
            return getattr(self, name)
        return getattr(self.scenes, name)

    @property
    def scenes(self) -> SceneData:
        """The typed scene settings (``dataset="scenes"`` only)."""
        if self.scene_data is None:
            raise ConfigError("this run does not train on scenes")
        return SceneData.from_dict(self.scene_data)

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir)
