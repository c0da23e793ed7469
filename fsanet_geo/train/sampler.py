"""Deterministic data order and augmentation randomness.

The batches of an epoch are a pure function of ``(seed, epoch, rank, world_size)``,
and the random augmentation of an item a pure function of ``(seed, epoch, index)``.
So a resumed run sees exactly the batches, flips and rotations an uninterrupted run
would, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def iters_per_epoch(num_items: int, batch_size: int, world_size: int = 1) -> int:
    """Optimiser steps per epoch: each process gets ``ceil(num_items / world_size)``
    items (padded by repeating the permutation), in batches of ``batch_size``; the last
    batch may be short."""
    per_rank = math.ceil(num_items / world_size)
    return math.ceil(per_rank / batch_size)


def epoch_batches(
    num_items: int,
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    rank: int = 0,
    world_size: int = 1,
) -> list[list[int]]:
    """Dataset indices of every batch of one process in one epoch (0-based ``epoch``).

    A permutation drawn from a :class:`torch.Generator` seeded with ``seed + epoch`` is
    padded to a multiple of ``world_size`` (as ``DistributedSampler`` does) and dealt
    round-robin: process ``rank`` takes items ``rank, rank + world_size, ...``.
    """
    if num_items < 1:
        raise ValueError("cannot make batches of an empty dataset")
    generator = torch.Generator().manual_seed(seed + epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    total = math.ceil(num_items / world_size) * world_size
    order += (order * math.ceil(total / num_items))[: total - num_items]
    mine = order[rank::world_size]
    return [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one item's augmentation, well mixed from its three inputs."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed the torch (CPU), numpy and python RNGs inside the block, then restore them."""
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds CUDA
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SeededItems(Dataset):
    """Wraps a dataset so that item ``i`` of epoch ``e`` is always augmented alike.

    Keys are ``(epoch, index)`` pairs (see :func:`keyed_batches`).
    """

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with seeded_rngs(item_seed(self.seed, epoch, index)):
            return self.dataset[index]


def keyed_batches(batches: list[list[int]], epoch: int) -> list[list[tuple[int, int]]]:
    """Turn index batches into :class:`SeededItems` keys for one epoch."""
    return [[(epoch, i) for i in batch] for batch in batches]
