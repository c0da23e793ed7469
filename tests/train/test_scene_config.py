"""Scene-training settings: validation, JSON round trip, resume checks."""

from __future__ import annotations

import pytest

from fsanet_geo.errors import ConfigError
from fsanet_geo.geodata.split_plan import block_side
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.scene_config import SceneData


def _sources(**extra: str) -> list[dict]:
    return [{"scene": "a.tif", "labels": "a.gpkg", "layer": None, "split": None, **extra}]


def test_defaults_validate_and_block_size() -> None:
    data = SceneData(sources=_sources())
    assert data.validates and data.val_fraction == 0.2
    assert block_side(data.val_block, 800) == 1600
    assert block_side(SceneData(sources=_sources(), val_block=500).val_block, 800) == 500
    assert not SceneData(sources=_sources(), val_fraction=0.0).validates
    assert SceneData(sources=_sources(split="val"), val_fraction=0.0).validates


@pytest.mark.parametrize(("fields", "message"), [
    ({"sources": []}, "at least one --scene"),
    ({"val_fraction": 1.0}, "--val-fraction must be in [0, 1)"),
    ({"object_share": 1.5}, "--object-share"),
    ({"point_box": -1.0}, "--point-box"),
    ({"classes": ["car", "car"]}, "names a class twice"),
    ({"sources": _sources(split="test")}, "split must be train or val"),
])
def test_bad_settings_name_the_option(fields: dict, message: str) -> None:
    values = {"sources": _sources(), **fields}
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        SceneData(**values)


def test_train_config_round_trip_and_resume_mismatch() -> None:
    data = SceneData(sources=_sources(), classes=["car"]).to_dict()
    config = TrainConfig(dataset="scenes", scene_data=data, work_dir="w")
    again = TrainConfig.from_dict(config.to_dict())
    assert again.scenes == config.scenes and again.validates
    moved = TrainConfig(dataset="scenes", work_dir="w",
                        scene_data={**data, "sources": _sources(scene="/new/place/a.tif")})
    assert moved.resume_mismatches(config) == []  # label files may move
    other = TrainConfig(dataset="scenes", work_dir="w", scene_data={**data, "classes": ["car", "ship"]})
    assert other.resume_mismatches(config) == ["classes"]
    assert other.setting("classes") == ["car", "ship"]


def test_scenes_dataset_needs_scene_data() -> None:
    with pytest.raises(ConfigError, match="needs --scene and --labels"):
        TrainConfig(dataset="scenes", work_dir="w")
