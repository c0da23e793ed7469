"""NMS rules (fsanet_geo.ops.nms_rules): options, interacting pairs, soft decay, pick order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fsanet_geo.errors import ConfigError
from fsanet_geo.ops.nms_rules import (
    NMS_METHODS,
    check_nms_options,
    interaction_threshold,
    priority_order,
    soft_decay,
)


def test_valid_options_pass_and_invalid_ones_name_the_problem() -> None:
    for method in NMS_METHODS:
        check_nms_options(method, 0.5, 0.5, "ios")
    check_nms_options("hard", 0.0, 1e-9)
    check_nms_options("hard", 1.0, 1.0)
    for args, match in [
        (("soft", 0.5, 0.5), "NMS method 'soft'"),
        (("hard", 0.5, 0.5, "dice"), "overlap metric 'dice'"),
        (("hard", 1.5, 0.5), "threshold"),
        (("hard", -0.1, 0.5), "threshold"),
        (("gaussian", 0.5, 0.0), "sigma"),
    ]:
        with pytest.raises(ConfigError, match=match):
            check_nms_options(*args)


def test_gaussian_decays_every_overlap_the_others_only_above_the_threshold() -> None:
    assert interaction_threshold("gaussian", 0.7) == 0.0
    assert interaction_threshold("linear", 0.7) == 0.7
    assert interaction_threshold("hard", 0.7) == 0.7


def test_decay_hand_cases() -> None:
    overlap = np.array([0.0, 0.3, 0.5, 0.8, 1.0])
    np.testing.assert_array_equal(soft_decay(overlap, "linear", 0.5, 0.5), [1.0, 1.0, 1.0, 1.0 - 0.8, 0.0])
    np.testing.assert_allclose(soft_decay(overlap, "gaussian", 0.5, 0.5), np.exp(-(overlap**2) / 0.5))
    assert soft_decay(np.array([0.6]), "gaussian", 0.9, 0.5)[0] == pytest.approx(math.exp(-0.72))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
    st.sampled_from(["linear", "gaussian"]),
    st.floats(0.0, 1.0),
    st.floats(0.01, 2.0),
)
def test_decay_is_in_0_1_not_increasing_in_the_overlap_and_equal_in_numpy_and_torch(
    overlaps: list[float], method: str, threshold: float, sigma: float
) -> None:
    overlap = np.sort(np.array(overlaps))
    decay = soft_decay(overlap, method, threshold, sigma)
    assert np.all((decay >= 0) & (decay <= 1))
    assert np.all(np.diff(decay) <= 0)
    if method == "linear":
        assert np.all(decay[overlap <= threshold] == 1.0)
    # Each library does its own exp: numpy and torch may differ in the last bit.
    torch_decay = soft_decay(torch.tensor(overlap), method, threshold, sigma).numpy()
    np.testing.assert_allclose(decay, torch_decay, rtol=1e-15, atol=0)


def test_priority_whole_first_then_score_then_tie_keys_then_index() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.5, 0.7])
    whole = np.array([True, False, True, True, True])
    tiles = np.array([1, 0, 0, 1, 0])
    np.testing.assert_array_equal(priority_order(scores), [1, 4, 0, 2, 3])
    np.testing.assert_array_equal(priority_order(scores, tiles, whole=whole), [4, 2, 0, 3, 1])
    seq = np.array([1, 0, 0, 0, 0])
    np.testing.assert_array_equal(priority_order(scores, tiles, seq, whole=whole), [4, 2, 3, 0, 1])
