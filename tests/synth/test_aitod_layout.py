"""Writing a synthetic data set in AI-TOD's file layout: matches the renderer, deterministic, safe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fsanet_geo.data.classes import AITOD_CLASSES
from fsanet_geo.errors import FileOverwriteError
from fsanet_geo.synth.aitod_layout import generate_synthetic_aitod, scene_seed
from fsanet_geo.synth.render import render_scene


def test_generated_set_matches_the_renderer(tmp_path: Path) -> None:
    root = generate_synthetic_aitod(tmp_path / "set", 4, seed=5, size=96, layout="fsanet", version="v1",
                                    test_fraction=0.25)
    trainval = json.loads((root / "trainval" / "aitod_trainval_v1.json").read_text())
    test = json.loads((root / "test" / "aitod_test_v1.json").read_text())
    assert [i["id"] for i in trainval["images"]] == [1, 2, 3] and [i["id"] for i in test["images"]] == [4]
    assert [c["name"] for c in trainval["categories"]] == list(AITOD_CLASSES)
    assert [c["id"] for c in trainval["categories"]] == list(range(1, 9))
    for data, split in ((trainval, "trainval"), (test, "test")):
        ids = [a["id"] for a in data["annotations"]]
        assert len(set(ids)) == len(ids)
        for img in data["images"]:
            image, boxes, labels = render_scene(96, 96, seed=scene_seed(5, img["id"]))
            from PIL import Image

            assert np.array_equal(np.asarray(Image.open(root / split / "Images" / img["file_name"])), image)
            anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
            got = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                            for a in anns]).reshape(-1, 4)
            assert np.array_equal(got, boxes)
            assert [a["category_id"] for a in anns] == (labels + 1).tolist()
            assert all(a["area"] == a["bbox"][2] * a["bbox"][3] and a["iscrowd"] == 0 and a["ignore"] == 0
                       for a in anns)
            assert (img["width"], img["height"]) == (96, 96)


def test_generation_is_deterministic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = generate_synthetic_aitod(tmp_path / "a", 3, seed=1, size=64)
    b = generate_synthetic_aitod(tmp_path / "b", 3, seed=1, size=64)
    c = generate_synthetic_aitod(tmp_path / "c", 3, seed=2, size=64)
    assert files(a) == files(b)
    assert files(a) != files(c)
    assert "aitod/annotations/small_train_v2_1.0.json" in files(a)
    with pytest.raises(FileOverwriteError, match="overwrite"):
        generate_synthetic_aitod(a, 2, seed=9, size=64)
    assert files(a) == files(b)  # untouched
    generate_synthetic_aitod(a, 3, seed=2, size=64, overwrite=True)
    assert files(a) == files(c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temporary leftovers
