"""A predictor's outputs: tensors, arrays or lists are read alike; anything else is a TypeError
naming the contract; labels beyond class_names warn once; tiling sanity warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fsanet_geo.geo.detect.predictor_output import CONTRACT, PredictorWarning, output_array, warn_unknown_labels
from fsanet_geo.geo.settings import DetectSettings
from fsanet_geo.geo.detect.tiling_checks import largest_regress_range, tiling_warnings


@pytest.mark.parametrize("wrap", [torch.tensor, np.array, lambda v: v], ids=["tensor", "numpy", "list"])
def test_tensors_arrays_and_lists_read_alike(wrap) -> None:  # noqa: ANN001
    out = {"boxes": wrap([[1.5, 2.0, 3.0, 4.0]]), "scores": wrap([0.9]), "labels": wrap([2])}
    assert output_array(out, "boxes", np.float64).tolist() == [[1.5, 2.0, 3.0, 4.0]]
    assert output_array(out, "scores", np.float32).tolist() == [pytest.approx(0.9)]
    assert output_array(out, "labels", np.int64).tolist() == [2]
    empty = {"boxes": wrap([]), "scores": wrap([]), "labels": wrap([])}
    assert output_array(empty, "boxes", np.float64).shape == (0, 4)


@pytest.mark.parametrize(
    ("out", "named"),
    [([1, 2], "got list"), ({"scores": [0.5], "labels": [0]}, "no 'boxes'"), ({"boxes": "x"}, "'boxes' is a str"),
     ({"boxes": [[1, 2, 3]]}, "'boxes' does not read as numbers of that shape")],
)
def test_a_broken_contract_is_a_type_error_naming_it(out, named: str) -> None:  # noqa: ANN001
    with pytest.raises(TypeError) as info:
        output_array(out, "boxes", np.float64)
    assert str(info.value).startswith(CONTRACT) and named in str(info.value)


def test_labels_beyond_class_names_warn_once_per_label() -> None:
    warned: set[int] = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_unknown_labels(np.array([0, 3, 3]), ["a", "b", "c"], warned)
        warn_unknown_labels(np.array([3, 1]), ["a", "b", "c"], warned)
    assert [str(w.message) for w in caught] == [
        "the predictor returned label(s) 3 beyond its 3 class_names; written as class_3"]
    assert caught[0].category is PredictorWarning


def test_detect_scene_accepts_a_list_predictor_and_warns_about_labels(tmp_path) -> None:  # noqa: ANN001
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scene_helpers import write_painted_scene

    from fsanet_geo.geo.detect.pipeline import detect_scene

    class ListPredictor:
        class_names = ["car"]

        def __call__(self, batch: torch.Tensor) -> list[dict]:
            return [{"boxes": [[2.0, 2.0, 6.0, 6.0]], "scores": [0.8], "labels": [1]} for _ in range(len(batch))]

    scene = write_painted_scene(tmp_path / "s.tif", height=40, width=40, n_objects=1, seed=0).path
    with pytest.warns(PredictorWarning, match="label\\(s\\) 1 beyond its 1 class_names"):
        gdf = detect_scene(scene, ListPredictor(), tile_size=40, overlap=0)
    assert list(gdf["class_name"]) == ["class_1"]


class _Model:
    class config:  # noqa: N801 - a ModelConfig stand-in
        regress_ranges = ((-1.0, 32.0), (32.0, 64.0), (64.0, 1e8))
        input_size = 800


def test_tiling_warnings_only_for_given_values_below_the_models_needs() -> None:
    assert largest_regress_range(_Model()) == 64.0
    assert tiling_warnings(DetectSettings(), _Model(), 800, 64) == []  # the defaults are not warned about
    assert tiling_warnings(DetectSettings(overlap=64), _Model(), 800, 64) == []
    (overlap,) = tiling_warnings(DetectSettings(overlap=16), _Model(), 800, 16)
    assert overlap.startswith("--overlap 16 is under the model's largest regression range (64 px)")
    (tile,) = tiling_warnings(DetectSettings(tile_size=400), _Model(), 400, 64)
    assert tile.startswith("--tile-size 400 is smaller than the model's training size (800 px)")
