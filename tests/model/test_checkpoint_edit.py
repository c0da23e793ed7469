"""Rewriting a safetensors file's metadata keeps every tensor byte and is atomic."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fsanet_geo.errors import FileOverwriteError
from fsanet_geo.model.files.checkpoint_edit import rewrite_metadata

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=25, deadline=None)
@given(before=st.dictionaries(_text, _text, max_size=4), updates=st.dictionaries(_text, _text, max_size=4),
       rows=st.integers(0, 5))
def test_metadata_is_replaced_and_tensors_are_kept(before: dict[str, str], updates: dict[str, str], rows: int) -> None:
    tensors = {"a": torch.arange(rows * 3, dtype=torch.float32).reshape(rows, 3),
               "b": torch.tensor([1, 2], dtype=torch.int8)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        save_file(tensors, str(path), metadata=before)
        copy = rewrite_metadata(path, updates, output=Path(tmp) / "c.safetensors")
        with safe_open(str(copy), framework="pt") as f:
            assert (f.metadata() or {}) == {**before, **updates}
        back = load_file(str(copy))
        assert back.keys() == tensors.keys() and all(torch.equal(back[k], v) for k, v in tensors.items())
        with safe_open(str(path), framework="pt") as f:  # the source is untouched
            assert (f.metadata() or {}) == before


def test_in_place_and_refusal(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"a": torch.ones(2)}, str(path), metadata={"k": "v"})
    rewrite_metadata(path, {"k": "w"})  # in place: the command's purpose, no --overwrite needed
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata() == {"k": "w"}
    other = tmp_path / "o.safetensors"
    other.write_bytes(b"keep")
    with pytest.raises(FileOverwriteError):
        rewrite_metadata(path, {"k": "x"}, output=other)
    assert other.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "o.safetensors"]  # no temp left
