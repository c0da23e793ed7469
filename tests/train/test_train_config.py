"""TrainConfig: the paper's recipes, the linear scaling rule, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from fsanet_geo.errors import ConfigError
from fsanet_geo.train.config import ADAMW_RECIPE, SGD_RECIPE, TrainConfig, recipe_for, scale_steps

AITOD = {"dataset": "aitod", "data_root": "/data/aitod"}


def test_recipes_are_the_papers() -> None:
    assert recipe_for("fsanet_r50") is SGD_RECIPE
    assert (SGD_RECIPE.optimizer, SGD_RECIPE.lr, SGD_RECIPE.batch_size) == ("sgd", 0.002, 8)
    assert (SGD_RECIPE.momentum, SGD_RECIPE.weight_decay, SGD_RECIPE.epochs) == (0.9, 1e-4, 12)
    assert SGD_RECIPE.lr_steps == (8, 11) and SGD_RECIPE.grad_clip == 35.0
    assert (SGD_RECIPE.warmup_iters, SGD_RECIPE.warmup_ratio) == (500, 1 / 3)
    assert recipe_for("fsanet_swin_t") is ADAMW_RECIPE
    assert (ADAMW_RECIPE.optimizer, ADAMW_RECIPE.lr, ADAMW_RECIPE.weight_decay) == ("adamw", 1e-4, 0.05)
    assert (ADAMW_RECIPE.epochs, ADAMW_RECIPE.lr_steps) == (24, (16, 22))


def test_linear_scaling_rule() -> None:
    assert TrainConfig.for_preset("fsanet_r50", **AITOD).lr_for() == pytest.approx(0.002)
    assert TrainConfig.for_preset("fsanet_r50", batch_size=2, **AITOD).lr_for() == pytest.approx(0.0005)
    assert TrainConfig.for_preset("fsanet_r50", batch_size=4, **AITOD).lr_for(world_size=2) == pytest.approx(0.002)
    # an explicit lr is used as is
    assert TrainConfig.for_preset("fsanet_r50", batch_size=2, lr=0.01, **AITOD).lr_for(4) == 0.01
    swin = TrainConfig.for_preset("fsanet_swin_t", batch_size=16, **AITOD)
    assert swin.optimizer == "adamw" and swin.lr_for() == pytest.approx(2e-4)


def test_other_epochs_move_the_steps() -> None:
    assert scale_steps((8, 11), 12, 24) == (16, 22)
    assert scale_steps((8, 11), 12, 12) == (8, 11)
    assert TrainConfig.for_preset("fsanet_r50", epochs=6, **AITOD).lr_steps == (4, 6)


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"dataset": "voc"}, "dataset"),
        ({"flip_h": 1.5}, "flip_h"),
        ({"input_size": 100}, "input_size"),
        ({"lr_steps": (11, 8)}, "lr_steps"),
        ({"max_iters": 0}, "max_iters"),
        ({"data_root": None}, "data root"),
    ],
)
def test_invalid_settings_name_the_setting(change: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        TrainConfig(**{**AITOD, **change})


def test_coco_needs_annotation_and_images() -> None:
    with pytest.raises(ConfigError, match="COCO"):
        TrainConfig(dataset="coco", train_ann="a.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train_ann": "a.json"}, "--ann needs --images too"),
        ({"train_images": "imgs"}, "--images needs --ann too"),
        ({"val_ann": "v.json"}, "--val-ann needs --val-images too"),
        ({"val_images": "imgs"}, "--val-images needs --val-ann too"),
    ],
)
def test_an_annotation_file_and_its_images_go_together(change: dict, message: str) -> None:
    # regression: with a data root, a lone --ann used to pass and fail later with a vague message
    with pytest.raises(ConfigError, match=message):
        TrainConfig(dataset="aitod", data_root="root", **change)


def test_json_round_trip_and_unknown_keys() -> None:
    cfg = TrainConfig.for_preset("fsanet_r18_lite", batch_size=3, max_iters=7, **AITOD)
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ConfigError, match="bogus"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_resume_mismatches_name_schedule_settings_only() -> None:
    cfg = TrainConfig(**AITOD)
    other = TrainConfig(**{**AITOD, "epochs": 20, "max_iters": 3, "num_workers": 0, "batch_size": 4, "seed": 1})
    assert other.resume_mismatches(cfg) == ["batch_size", "seed"]


def test_validation_switch() -> None:
    assert TrainConfig(**AITOD).validates
    assert not TrainConfig(**AITOD, val_interval=0).validates
    assert not TrainConfig(dataset="coco", train_ann="a.json", train_images="i").validates
    assert TrainConfig(dataset="coco", train_ann="a", train_images="i", val_ann="b", val_images="j").validates
