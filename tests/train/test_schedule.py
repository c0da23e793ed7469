"""The warmup + step schedule against hand-computed values (MMDetection 2.x semantics)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsanet_geo.train.schedule import lr_at

PAPER = {"base_lr": 0.002, "steps": (8, 11), "warmup_iters": 500, "warmup_ratio": 1 / 3}


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [
        (0, 0.002 / 3),  # warmup starts at ratio * lr
        (250, 0.002 * 2 / 3),  # half way: k = 0.5 * 2/3 = 1/3 -> lr * 2/3
        (499, 0.002 * (1 - (1 / 500) * (2 / 3))),
        (500, 0.002),  # warmup over
        (1749, 0.002),  # last iteration of epoch 1 (0-based 0)
        (8 * 1750 - 1, 0.002),  # last iteration of the 8th epoch
        (8 * 1750, 0.0002),  # first iteration of the 9th epoch: x0.1
        (11 * 1750 - 1, 0.0002),
        (11 * 1750, 0.00002),  # 12th epoch: x0.01
        (12 * 1750 - 1, 0.00002),
    ],
)
def test_paper_schedule_hand_values(iteration: int, expected: float) -> None:
    assert lr_at(iteration, 1750, **PAPER) == pytest.approx(expected, rel=1e-12)


def test_warmup_multiplies_the_decayed_rate() -> None:
    # A short epoch (10 iterations) puts the first step inside the warmup: at iteration 20
    # (epoch 2 >= step 2) the regular rate is 0.1 and the warmup factor 1 - 0.8 * 0.5 = 0.6.
    lr = lr_at(20, 10, base_lr=1.0, steps=(2,), gamma=0.1, warmup_iters=100, warmup_ratio=0.5)
    assert lr == pytest.approx(0.1 * 0.6)


def test_no_warmup_and_no_steps_is_constant() -> None:
    assert [lr_at(i, 3, base_lr=0.5, warmup_iters=0) for i in range(10)] == [0.5] * 10


@pytest.mark.parametrize("bad", [{"iteration": -1, "iters_per_epoch": 5}, {"iteration": 0, "iters_per_epoch": 0}])
def test_bad_arguments(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        lr_at(bad["iteration"], bad["iters_per_epoch"], base_lr=0.1)


@given(st.integers(0, 5000), st.integers(1, 400))
def test_rate_is_bounded_and_monotone_in_warmup(iteration: int, ipe: int) -> None:
    lr = lr_at(iteration, ipe, **PAPER)
    assert 0 < lr <= 0.002 + 1e-15
    if iteration + 1 < 500 and (iteration + 1) // ipe == iteration // ipe:
        assert lr_at(iteration + 1, ipe, **PAPER) > lr
