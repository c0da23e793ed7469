"""Which AI-TOD splits a training run uses when the user names none.

AI-TOD v2 has ``train`` + ``val`` (together ``trainval``) and ``test``; v1 has only
``trainval`` and ``test``. A run should pick its best checkpoint on a validation split that
is not the split ``fsanet eval`` reports (``test``), so where the layout has ``val`` the
defaults are train on ``train`` and validate on ``val``; otherwise ``trainval`` / ``test``.
"""

from __future__ import annotations

import os

from fsanet_geo.data.aitod import find_aitod_split
from fsanet_geo.errors import DatasetError


def has_split(root: str | os.PathLike[str], split: str) -> bool:
    """Whether the AI-TOD tree under ``root`` has ``split`` (its annotations and images)."""
    try:
        find_aitod_split(root, split)
    except DatasetError:
        return False
    return True


def default_splits(
    root: str | os.PathLike[str], train_split: str | None = None, val_split: str | None = None
) -> tuple[str, str]:
    """``(train split, validation split)``: the given ones, the others chosen so that the
    validation split is ``val`` where the layout has ``train`` and ``val``, and never overlaps
    the training split (``trainval`` contains ``val``: then ``test``)."""
    split_layout = has_split(root, "val") and has_split(root, "train")
    train = train_split or ("train" if split_layout else "trainval")
    val = val_split or ("val" if split_layout and train != "trainval" else "test")
    return train, val
