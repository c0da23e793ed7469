"""Point 11 of issue 17: a resume journal covers everything that changes results, and a refusal
names what changed with both values; point 5: a run without --resume says it starts fresh."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from scene_helpers import PaintedPredictor, PaintedScene

from fsanet_geo.errors import ConfigError, StartingFreshWarning
from fsanet_geo.geo.outputs.fingerprint import RUN_ONLY_SETTINGS, describe_changes, model_identity, module_sha256, run_fingerprint
from fsanet_geo.geo.detect.pipeline import detect_to_file
from fsanet_geo.geo.settings import DetectSettings

TILE, OVERLAP = 64, 16


class HashedPredictor(PaintedPredictor):
    """The painted predictor standing for a checkpoint with a given weights hash."""

    def __init__(self, sha: str, interrupt_on_call: int | None = None) -> None:
        super().__init__(interrupt_on_call)
        self.weights_sha256 = sha


def interrupted_run(scene: PaintedScene, out: Path, predictor: PaintedPredictor, settings: DetectSettings) -> None:
    with pytest.raises(KeyboardInterrupt):
        detect_to_file([scene.path], predictor, out, settings=settings)
    assert (out.parent / f"{out.name}.partial").is_dir()


def test_every_setting_but_the_run_only_ones_is_in_the_fingerprint(utm_scene: PaintedScene) -> None:
    fp = run_fingerprint(DetectSettings(), PaintedPredictor(), [utm_scene.path], 64, 16)
    fields = {f.name for f in dataclasses.fields(DetectSettings)}
    assert set(fp["settings"]) == fields - set(RUN_ONLY_SETTINGS)  # a new field is covered without a code change
    assert fp["tiling"] == {"tile_size": 64, "overlap": 16}
    assert fp["scenes"][0]["path"] == str(utm_scene.path.resolve())
    assert fp["model"]["weights_sha256"].endswith("PaintedPredictor")


def test_resume_with_other_weights_is_refused_naming_both_hashes(utm_scene: PaintedScene, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP)
    interrupted_run(utm_scene, out, HashedPredictor("a" * 64, interrupt_on_call=2), settings)
    resume = dataclasses.replace(settings, resume=True)
    with pytest.raises(ConfigError) as err:
        detect_to_file([utm_scene.path], HashedPredictor("b" * 64), out, settings=resume)
    assert f"weights (SHA-256): {'a' * 12} then, {'b' * 12} now" in str(err.value)
    assert not out.exists()
    summary = detect_to_file([utm_scene.path], HashedPredictor("a" * 64), out, settings=resume)  # same weights
    assert summary.resumed_tiles == 4 and summary.progress.detections == len(utm_scene.boxes)


def test_a_refusal_names_each_changed_setting_with_both_values(utm_scene: PaintedScene, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    interrupted_run(utm_scene, out, PaintedPredictor(interrupt_on_call=2),
                    DetectSettings(tile_size=TILE, overlap=OVERLAP, score_thr=0.3))
    other = DetectSettings(tile_size=TILE, overlap=OVERLAP, score_thr=0.5, nms_iou=0.6, bands=[3, 2, 1], resume=True,
                           batch_size=7, read_threads=1)  # the last two do not change results: not named
    with pytest.raises(ConfigError) as err:
        detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=other)
    assert str(err.value) == (
        f"resume journal {out}.partial was made with other scenes or settings (bands: null then, [3, 2, 1] now; "
        "nms_iou: 0.5 then, 0.6 now; score_thr: 0.3 then, 0.5 now): run with the same ones, "
        "or without --resume to start over"
    )


def test_a_run_without_resume_over_a_journal_says_it_starts_fresh(utm_scene: PaintedScene, tmp_path: Path) -> None:
    out = tmp_path / "out.gpkg"
    settings = DetectSettings(tile_size=TILE, overlap=OVERLAP)
    interrupted_run(utm_scene, out, PaintedPredictor(interrupt_on_call=2), settings)
    with pytest.warns(StartingFreshWarning, match=r"out\.gpkg\.partial holds the finished tiles of an interrupted "
                                                  r"run: starting fresh"):
        summary = detect_to_file([utm_scene.path], PaintedPredictor(), out, settings=settings)
    assert summary.resumed_tiles == 0 and summary.progress.detections == len(utm_scene.boxes)


def test_module_hash_changes_with_any_tensor_and_config_is_recorded() -> None:
    from fsanet_geo.model.presets import build_model

    torch.manual_seed(0)
    model = build_model("fcos_r18_lite", num_classes=2, input_size=64, neck_channels=32, head_channels=32,
                        num_tower_convs=1)
    before = module_sha256(model)
    assert module_sha256(model) == before
    with torch.no_grad():
        model.head.cls_logits.bias[0] += 1e-6
    assert module_sha256(model) != before
    identity = model_identity(model)
    assert identity["weights_sha256"] == module_sha256(model)
    assert identity["config"] == model.config.to_dict() and identity["class_names"] == model.class_names


def test_describe_changes_of_another_version_and_many_changes() -> None:
    assert describe_changes({"version": 1}, {"version": 2}) == "it was made by another version of fsanet-geo"
    saved = {"version": 2, "settings": {k: 0 for k in "abcdef"}}
    now = {"version": 2, "settings": {k: 1 for k in "abcdef"}}
    assert describe_changes(saved, now) == "a: 0 then, 1 now; b: 0 then, 1 now; c: 0 then, 1 now; d: 0 then, 1 now (and 2 more)"
