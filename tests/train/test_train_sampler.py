"""Deterministic batches, sharding and per-item augmentation seeds."""

from __future__ import annotations

import random

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from fsanet_geo.train.sampler import SeededItems, epoch_batches, item_seed, iters_per_epoch, keyed_batches


def test_batches_are_a_pure_function_of_seed_and_epoch() -> None:
    a = epoch_batches(10, 3, seed=5, epoch=2)
    assert a == epoch_batches(10, 3, seed=5, epoch=2)
    assert a != epoch_batches(10, 3, seed=5, epoch=3)
    assert [len(b) for b in a] == [3, 3, 3, 1]
    assert sorted(i for b in a for i in b) == list(range(10))


@given(st.integers(1, 60), st.integers(1, 7), st.integers(1, 4), st.integers(0, 3))
def test_shards_cover_every_item_equally(n: int, batch: int, world: int, epoch: int) -> None:
    shards = [epoch_batches(n, batch, seed=0, epoch=epoch, rank=r, world_size=world) for r in range(world)]
    seen = [i for shard in shards for b in shard for i in b]
    assert set(seen) == set(range(n))
    assert len(seen) == -(-n // world) * world  # padded to a multiple of the world size
    assert all(len(shard) == iters_per_epoch(n, batch, world) for shard in shards)


class _Noisy:
    """A dataset whose items are random draws, like a random flip."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[float, float, float]:
        return torch.rand(()).item(), float(np.random.rand()), random.random()


def test_item_augmentation_depends_only_on_seed_epoch_index() -> None:
    items = SeededItems(_Noisy(), seed=3)
    first = items[(1, 2)]
    torch.manual_seed(999)
    np.random.seed(999)
    assert items[(1, 2)] == first
    assert items[(2, 2)] != first and items[(1, 3)] != first
    assert item_seed(3, 1, 2) != item_seed(3, 2, 1)


def test_item_seeding_leaves_the_caller_rngs_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    SeededItems(_Noisy(), seed=1)[(0, 0)]
    assert torch.equal(torch.rand(3), expected)


def test_keyed_batches() -> None:
    assert keyed_batches([[3, 1], [0]], 4) == [[(4, 3), (4, 1)], [(4, 0)]]
