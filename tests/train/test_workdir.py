"""The work dir: reading a run's saved config to resume it, and the metrics log on resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsanet_geo.errors import CheckpointError, ConfigError
from fsanet_geo.train.config import TrainConfig
from fsanet_geo.train.workdir import CONFIG_FILE, METRICS_FILE, MetricsLog, resumed_config, write_config


def _saved(work: Path) -> TrainConfig:
    config = TrainConfig(data_root="data", work_dir=str(work), batch_size=4, epochs=3, overwrite=True)
    work.mkdir()
    write_config(config)
    return config


def test_resumed_config_is_the_saved_one_with_the_given_changes(tmp_path: Path) -> None:
    saved = _saved(tmp_path / "run")
    config = resumed_config(tmp_path / "run", epochs=5, lr=None, device="cpu")
    assert (config.epochs, config.device, config.batch_size, config.lr) == (5, "cpu", saved.batch_size, None)
    assert config.resume and not config.overwrite and config.work_dir == str(tmp_path / "run")


def test_resumed_config_refuses_a_missing_or_broken_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"cannot resume: .*config.json does not exist"):
        resumed_config(tmp_path)
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        resumed_config(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"colour": "red"}))
    with pytest.raises(ConfigError, match="unknown training settings: colour"):
        resumed_config(tmp_path)


def test_metrics_log_on_resume_drops_later_and_cut_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"type": "train", "iter": i}) for i in (1, 2, 3)]
    (tmp_path / METRICS_FILE).write_text("\n".join(lines) + '\n{"type": "tr')
    with MetricsLog(tmp_path, truncate_after=2) as log:
        log.write({"type": "train", "iter": 3})
    records = [json.loads(line) for line in (tmp_path / METRICS_FILE).read_text().splitlines()]
    assert [r["iter"] for r in records] == [1, 2, 3]
