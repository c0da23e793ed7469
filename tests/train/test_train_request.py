"""train_config: a run's TrainConfig from what ``fsanet train`` was asked (defaults and checks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsanet_geo.errors import ConfigError
from fsanet_geo.option_values import parse_csv
from fsanet_geo.train.setup.request import TrainRequest, train_config
from fsanet_geo.train.setup.scene_request import SceneOptions, is_plain_path


def test_a_new_run_on_aitod_gets_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = train_config(TrainRequest(fields={"data_root": tmp_path, "epochs": 2, "lr": None}))
    assert (config.dataset, config.model, config.epochs) == ("aitod", "fsanet_r50", 2)
    assert (config.train_split, config.val_split) == ("trainval", "test")  # a layout without val
    assert config.work_dir == str(Path("work_dirs") / "fsanet_r50") and config.data_root == str(tmp_path)


def test_given_splits_and_work_dir_are_kept(tmp_path: Path) -> None:
    config = train_config(TrainRequest(fields={"data_root": tmp_path, "train_split": "train", "val_split": "val"},
                                       model="fcos_r18_tiny", work_dir=tmp_path / "w", overwrite=True))
    assert (config.model, config.train_split, config.val_split) == ("fcos_r18_tiny", "train", "val")
    assert config.work_dir == str(tmp_path / "w") and config.overwrite


@pytest.mark.parametrize(("request_", "message"), [
    (TrainRequest(fields={"data_root": "."}, model="nope"), "unknown model 'nope': choose one of "),
    (TrainRequest(fields={"data_root": ".", "pretrained_backbone": "missing.pth"}),
     "--pretrained-backbone: missing.pth is neither 'imagenet' nor an existing file"),
    (TrainRequest(fields={"data_root": "."}, scenes=SceneOptions(classes="car", val_block=64)),
     "--classes, --val-block need scenes with labels (--scene/--labels or --scenes)"),
    (TrainRequest(fields={"data_root": "."}, scenes=SceneOptions(aoi=Path("a.gpkg"))),
     "--aoi needs scenes with labels (--scene/--labels or --scenes)"),
    (TrainRequest(fields={"dataset": "coco"}, scenes=SceneOptions(scenes=["a.tif"], labels=["a.gpkg"])),
     "--scene/--scenes train on rasters + vector labels: leave out --data-root, --ann and --dataset"),
    (TrainRequest(resume=True), "--resume needs --work-dir (the folder of the run to continue)"),
])
def test_bad_requests_name_the_problem(request_: TrainRequest, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config(request_)
    assert str(info.value).startswith(message)


def test_imagenet_in_any_case(tmp_path: Path) -> None:
    config = train_config(TrainRequest(fields={"data_root": tmp_path, "pretrained_backbone": "ImageNet"}))
    assert config.pretrained_backbone == "imagenet"


def test_scene_options_name_the_given_settings() -> None:
    options = SceneOptions(scenes=["a.tif"], class_field="kind", object_share=0.0)
    assert options.named and options.given_flags() == ["--class-field", "--object-share"]
    assert not SceneOptions().named and SceneOptions().given_flags() == []


def test_plain_paths_and_lists() -> None:
    assert is_plain_path("data/a.tif") and not is_plain_path("https://x/a.tif")
    assert not is_plain_path("/vsizip/a.zip/a.tif")
    assert parse_csv(" 3, 2,1", int, "--bands") == [3, 2, 1] and parse_csv("  ") is None
    with pytest.raises(ConfigError, match=r"^--bands: cannot read 'x'$"):
        parse_csv("1,x", int, "--bands")
    with pytest.raises(ConfigError, match=r"^--classes: empty item in 'a,,b' \(give comma-separated values\)$"):
        parse_csv("a,,b", str, "--classes")
