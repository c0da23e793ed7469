"""Command-line polish (issue 17): help at 80 columns, bare commands, shared defaults, the
checkpoint's score threshold, plurals, tiling sanity and option conflicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "geo"))
from scene_helpers import CLASS_NAMES, write_painted_scene  # noqa: E402

from fsanet_cli._help import help_record  # noqa: E402
from fsanet_cli._render import plural  # noqa: E402
from fsanet_cli.main import app  # noqa: E402

runner = CliRunner()
ALL = {}


def _walk(command, path=()):  # noqa: ANN001, ANN202
    ALL[path] = command
    for name, sub in getattr(command, "commands", {}).items():
        _walk(sub, (*path, name))


_walk(typer.main.get_command(app))
LEAVES = sorted(p for p, c in ALL.items() if not hasattr(c, "commands"))


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_help_at_80_columns_is_whole(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "<bool>" not in text and "…" not in text and "{" not in text.splitlines()[0]
    flat = " ".join(text.split())
    for param in ALL[path].params:
        record = help_record(param)
        if record is None:
            continue
        assert record[0].split(" ")[0].rstrip(",") in text  # the option name, never cut
        default = next((part for part in record[1].split("[")[1:] if part.startswith("default: ")), None)
        if default is not None:
            assert f"[{default.strip()}" in flat  # the default, whole (wrapped, not cut)


@pytest.mark.parametrize("path", LEAVES, ids=[" ".join(p) for p in LEAVES])
def test_every_value_option_states_its_default_in_one_style(path: tuple[str, ...]) -> None:
    missing = []
    for param in ALL[path].params:
        record = help_record(param)
        if (record is None or getattr(param, "is_flag", False) or param.required or param.name == "help"
                or param.param_type_name == "argument"):  # detect's SCENE... is optional (or --scenes)
            continue
        if "[default: " not in record[1] or "(" in record[1].split("[default: ")[1][:1]:
            missing.append(record[0])
    assert not missing, f"options without [default: ...]: {missing}"


def test_flags_and_usage_render_plainly() -> None:
    text = runner.invoke(app, ["detect", "--help"], terminal_width=80).output
    assert text.splitlines()[0].endswith("detect [OPTIONS] [SCENE...]")  # optional: or --scenes FILE
    half = next(line for line in text.splitlines() if "--half" in line)
    assert half.split()[:2] == ["--half", "fp16"]  # no placeholder after a flag
    train = runner.invoke(app, ["train", "--help"], terminal_width=80).output
    assert "--rot90 / --no-rot90" in train and "--pretrained-backbone TEXT" in train
    presets = runner.invoke(app, ["model", "presets", "--help"], terminal_width=80).output
    assert "``" not in presets and "convs is the number of 3x3 convs" in " ".join(presets.split())
    synth = runner.invoke(app, ["data", "synth", "--help"], terminal_width=80).output
    assert synth.splitlines()[0].endswith("synth [OPTIONS] OUT")


def test_score_thr_is_one_name_with_a_hidden_alias() -> None:
    for command in ("detect", "eval"):
        text = runner.invoke(app, [command, "--help"], terminal_width=120).output
        assert "--score-thr FLOAT" in text and "--score-threshold" not in text
    detect = " ".join(runner.invoke(app, ["detect", "--help"], terminal_width=120).output.split())
    assert "[default: the checkpoint's own, 0.35 for the demo model]" in detect


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsanet_cli.main", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(
    ("args", "usage", "missing"),
    [
        (("detect",), "detect [OPTIONS] [SCENE...]", "Missing argument 'SCENE...'"),  # or --scenes FILE
        (("model", "info"), "model info [OPTIONS] CHECKPOINT", "Missing argument 'CHECKPOINT'"),
        (("train",), "train [OPTIONS]", "Missing option --data-root DIR"),
    ],
)
def test_a_bare_command_gives_its_usage_and_what_is_missing(args: tuple[str, ...], usage: str, missing: str) -> None:
    result = _run(*args)
    assert result.returncode == 2 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("Usage: ") and lines[0].endswith(usage)
    assert lines[1].startswith("error: ") and missing in lines[1]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from fsanet_geo.model.files.checkpoint import save_checkpoint
    from fsanet_geo.model.presets import build_model

    torch.manual_seed(0)
    model = build_model("fcos_r18_lite", num_classes=3, class_names=list(CLASS_NAMES), input_size=64,
                        score_thr=0.05)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(model, path, extra_metadata={"score_threshold_from": "chosen for the tests"})
    return path


def test_an_uncalibrated_checkpoint_is_noted_once_when_detection_starts(scene: Path, tmp_path: Path) -> None:
    import torch

    from fsanet_geo.model.files.checkpoint import save_checkpoint
    from fsanet_geo.model.presets import build_model

    torch.manual_seed(0)
    path = tmp_path / "raw.safetensors"
    save_checkpoint(build_model("fcos_r18_lite", num_classes=3, class_names=list(CLASS_NAMES), input_size=64), path)
    base = ["detect", str(scene), "--weights", str(path), "--device", "cpu", "--tile-size", "64"]
    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a.gpkg")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "was not calibrated" in line]
    assert len(notes) == 1 and notes[0].startswith("note: raw.safetensors's score threshold 0.05 was not calibrated")
    given = runner.invoke(app, [*base, "-o", str(tmp_path / "b.gpkg"), "--score-thr", "0.3"])
    assert given.exit_code == 0 and "was not calibrated" not in given.stderr
    refused = runner.invoke(app, [*base, "-o", str(tmp_path / "a.gpkg")])  # exists: one error line, no note
    assert _error_line(refused).startswith("error:") and "was not calibrated" not in refused.output


def test_model_info_shows_and_set_threshold_sets_the_checkpoints_threshold(tiny_weights: Path,
                                                                           tmp_path: Path) -> None:
    from fsanet_geo.model.files.checkpoint import load_model, read_checkpoint_metadata

    info = runner.invoke(app, ["model", "info", str(tiny_weights)], terminal_width=200)
    assert "score threshold" in info.stdout and "0.05 (fsanet detect's default --score-thr)" in info.stdout
    copy = tmp_path / "copy.safetensors"
    result = runner.invoke(app, ["model", "set-threshold", str(tiny_weights), "0.3", "-o", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"score threshold 0.05 -> 0.3: {copy}" in " ".join(result.stderr.split())
    assert load_model(copy).postprocessor.score_thr == pytest.approx(0.3)
    assert load_model(tiny_weights).postprocessor.score_thr == pytest.approx(0.05)  # the original is kept
    mine = ("config", "score_threshold_from")
    before = {k: v for k, v in read_checkpoint_metadata(tiny_weights).items() if k not in mine}
    after = read_checkpoint_metadata(copy)
    assert after["score_threshold_from"] == "set by hand: fsanet model set-threshold 0.3"  # detect's note stops
    assert {k: v for k, v in after.items() if k not in mine} == before
    refused = runner.invoke(app, ["model", "set-threshold", str(copy), "1.0"])
    assert refused.exit_code == 2 and "score_thr must be in [0, 1)" in refused.stderr
    assert load_model(copy).postprocessor.score_thr == pytest.approx(0.3)  # untouched
    again = runner.invoke(app, ["model", "set-threshold", str(tiny_weights), "0.3", "-o", str(copy)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    in_place = runner.invoke(app, ["model", "set-threshold", str(copy), "0.1"])
    assert in_place.exit_code == 0 and load_model(copy).postprocessor.score_thr == pytest.approx(0.1)
    state = load_model(copy).state_dict()
    assert all((state[k] == v).all() for k, v in load_model(tiny_weights).state_dict().items())


def test_detect_score_thr_replaces_the_checkpoints_threshold(tmp_path: Path) -> None:
    from fsanet_geo.geo.detect.job_model import apply_score_threshold
    from fsanet_geo.model.presets import build_model

    model = build_model("fcos_r18_lite", num_classes=3, input_size=64, score_thr=0.35)
    apply_score_threshold(model, None)
    assert model.postprocessor.score_thr == pytest.approx(0.35)
    apply_score_threshold(model, 0.1)  # lower than the checkpoint's: more detections, as asked
    assert model.postprocessor.score_thr == pytest.approx(0.1) and model.config.score_thr == pytest.approx(0.1)


def test_plurals() -> None:
    assert [plural(n, "tile") for n in (0, 1, 2)] == ["0 tiles", "1 tile", "2 tiles"]
    assert plural(1, "epoch") == "1 epoch"


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    return write_painted_scene(tmp_path / "scene.tif", height=96, width=120, n_objects=8, seed=1).path


def _error_line(result) -> str:  # noqa: ANN001
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


def test_output_and_format_that_disagree_are_refused(scene: Path, tmp_path: Path) -> None:
    line = _error_line(runner.invoke(app, ["detect", str(scene), "-o", str(tmp_path / "y.gpkg"), "--format", "csv"]))
    assert "-o y.gpkg and --format csv disagree" in line and "y.csv" in line


def test_overlap_over_half_the_tile_is_refused(scene: Path, tmp_path: Path, tiny_weights: Path) -> None:
    line = _error_line(runner.invoke(app, ["detect", str(scene), "-o", str(tmp_path / "o.gpkg"), "--weights",
                                           str(tiny_weights), "--tile-size", "100", "--overlap", "64"]))
    assert "overlap (64) is over half the tile size (100)" in line and "--overlap 50" in line


def test_scene_without_crs_fails_before_the_model_loads(tmp_path: Path, tiny_weights: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from fsanet_geo.geo.detect import detect_job

    def no_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the model was loaded before the scene checks")

    monkeypatch.setattr(detect_job, "load_detector", no_load)
    no_crs = write_painted_scene(tmp_path / "nocrs.tif", height=40, width=40, n_objects=2, seed=2, crs=None).path
    out = str(tmp_path / "o.gpkg")
    line = _error_line(runner.invoke(app, ["detect", str(no_crs), "-o", out, "--weights", str(tiny_weights)]))
    assert "no CRS" in line
    one_band = write_painted_scene(tmp_path / "one.tif", height=40, width=40, n_objects=2, seed=3, count=1).path
    line = _error_line(runner.invoke(app, ["detect", str(one_band), "-o", out, "--weights", str(tiny_weights)]))
    assert "model takes 3" in line


def test_eval_defaults_to_aitod_like_train(tmp_path: Path, tiny_weights: Path) -> None:
    text = " ".join(runner.invoke(app, ["eval", "--help"], terminal_width=120).output.split())
    assert "--dataset [aitod|coco] Dataset kind (mode a), as in train. [default: aitod]" in text
    line = _error_line(runner.invoke(app, ["eval", "--weights", str(tiny_weights)]))
    assert "--dataset aitod needs --data-root DIR" in line


def test_train_validates_on_val_where_the_layout_has_one(tmp_path: Path) -> None:
    from fsanet_geo.data.aitod_splits import default_splits
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    v2 = generate_synthetic_aitod(tmp_path / "v2", 5, seed=0, size=64, version="v2")
    v1 = generate_synthetic_aitod(tmp_path / "v1", 5, seed=0, size=64, version="v1")
    assert default_splits(v2) == ("train", "val")
    assert default_splits(v2, "trainval") == ("trainval", "test")  # val is inside trainval
    assert default_splits(v2, val_split="test") == ("train", "test")
    assert default_splits(v1) == ("trainval", "test")


def test_train_says_its_splits_first(tmp_path: Path) -> None:
    from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod

    root = generate_synthetic_aitod(tmp_path / "d", 6, seed=0, size=64, version="v2", test_fraction=0.34)
    result = runner.invoke(app, ["train", "--data-root", str(root), "--model", "fcos_r18_tiny", "--input-size", "64",
                                 "--epochs", "2", "--batch-size", "4", "--workers", "0", "--keep-epochs", "1", "--val-interval", "2",
                                 "--device", "cpu", "--work-dir", str(tmp_path / "w")], terminal_width=200)
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first == "training on aitod 'train', validating on 'val' (best is picked on it)"
    assert "(2 epochs)" in result.stderr
    # --keep-epochs 1 keeps the newest epoch file; last is a hard link to it, not a third copy
    work = tmp_path / "w"
    assert sorted(p.name for p in work.glob("*.safetensors")) == ["best.safetensors", "epoch_2.safetensors",
                                                                   "last.safetensors"]
    assert (work / "last.safetensors").stat().st_ino == (work / "epoch_2.safetensors").stat().st_ino
    from fsanet_geo.model.files.checkpoint import read_checkpoint_metadata

    best = tmp_path / "w" / "best.safetensors"
    meta = read_checkpoint_metadata(best)
    assert meta["best_metric"] == "AP" and meta["best_epoch"] == "2" and meta["best_split"] == "val"
    assert float(meta["best_value"]) <= 1.0
    assert json.loads(meta["config"])["preset"] == "fcos_r18_tiny"


def test_off_a_terminal_a_plain_progress_line_every_n_seconds(scene: Path, tmp_path: Path, tiny_weights: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from fsanet_cli import detect

    monkeypatch.setattr(detect, "PLAIN_PROGRESS_EVERY_S", 0.0)  # every batch instead of every 30 s
    out = tmp_path / "o.gpkg"
    result = runner.invoke(app, ["detect", str(scene), "-o", str(out), "--weights", str(tiny_weights),
                                 "--device", "cpu", "--batch-size", "1", "--tile-size", "64"], terminal_width=200)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    plain = [line for line in lines if re.fullmatch(
        r"o\.gpkg \(scene\.tif\): \d+/\d+ tiles?, \d+ objects?, \d+\.\d tiles/s, ETA (\d:\d\d:\d\d|-:--:--)", line)]
    assert plain and len(plain) == len(lines) - 1, result.stderr  # then the summary line
    done = [int(line.split(": ")[1].split("/")[0]) for line in plain]
    total = int(plain[0].split("/")[1].split(" ")[0])
    assert done == sorted(done) and max(done) < total
    assert lines[-1].endswith(f"-> {out}")


def test_train_off_a_terminal_reports_within_an_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from fsanet_cli import train

    monkeypatch.setattr(train, "PLAIN_PROGRESS_EVERY_S", 0.0)
    printed: list[str] = []
    monkeypatch.setattr(train.console, "print", lambda text, **kwargs: printed.append(str(text)))
    show = train._TrainProgress()
    show.bar.disable = True
    start = SimpleNamespace(kind="start", total_iters=6, iteration=0, epoch=1, epochs=2)
    show(start)
    for i in (1, 2, 3):
        show(SimpleNamespace(kind="iter", epoch=1, epochs=2, iteration=i, total_iters=6, epoch_iter=i,
                             iters_per_epoch=3, losses={"loss": 1.0, "cls": 0.5}, lr=0.01, images_per_s=2.0,
                             eta_s=3.0 * (6 - i)))
    assert printed[0] == "epoch 1/2 iteration 1/6: loss 1.000 (cls 0.500) lr 1.00e-02 2.0 img/s ETA 0:00:15"
    assert printed[1].startswith("epoch 1/2 iteration 2/6: ")
    assert printed[2] == "epoch 1/2 done at iteration 3: loss 1.000 (cls 0.500) lr 1.00e-02 2.0 img/s"
    assert len(printed) == 3  # the epoch's last iteration: its lasting line only
