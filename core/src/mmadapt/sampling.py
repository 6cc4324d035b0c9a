"""Seeded batches and seeds: what makes a fresh and a resumed run draw the same data.

Shuffling and augmentation are seeded from (seed, stage, epoch), so an epoch draws the same batches
whether the run is fresh or resumed, and every data-parallel rank agrees on the global batch: rank r
takes items r, r + world, ... of each global batch, and DDP's gradient mean equals the one-process
mean over the same global batch. Each training item's augmentation is drawn from (epoch seed, item
index), so an item is cropped and flipped alike whichever process, or loader worker, reads it.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


class GlobalBatchSampler(Sampler[list[int]]):
    """Seeded global batches, each split across data-parallel ranks.

    Dassl drops the last incomplete batch only when the split holds at least one full batch. With
    ``whole_batches`` rank r takes batches r, r + world, ... whole instead of a share of each: every
    batch then has the same items and shape on any number of ranks (exact passes).
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1,
                 whole_batches: bool = False):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world, self.whole_batches = rank, world, whole_batches

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)).tolist()
        else:
            order = list(range(self.n))
        batches = batches_of(self.n, self.batch_size, drop_last=self.shuffle)
        if self.whole_batches:
            batches = batches[self.rank :: self.world]
        for batch in batches:
            items = [order[i] for i in batch]
            items = items if self.whole_batches else items[self.rank :: self.world]
            if items:
                yield items

    def __len__(self) -> int:
        batches = batches_of(self.n, self.batch_size, drop_last=self.shuffle)
        return len(batches[self.rank :: self.world] if self.whole_batches else batches)


class SeededItems(torch.utils.data.Dataset):
    """``dataset`` with Python, NumPy and torch seeded from (``seed``, item index) before each item is read."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        seed_everything(self.seed, index)
        return self.dataset[index]


def batches_of(n: int, batch_size: int, drop_last: bool = True) -> list[range]:
    """Index ranges of consecutive batches; the tail is dropped only if a full batch exists."""
    ranges = [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if drop_last and len(ranges) > 1 and len(ranges[-1]) < batch_size:
        ranges.pop()
    return ranges


def stable_seed(*parts: Any) -> int:
    """A seed derived from several parts that is the same in every process and Python session."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def seed_everything(*parts: Any) -> None:
    """Seed Python, NumPy and torch from ``parts`` (the run seed, a stage, an epoch)."""
    seed = stable_seed(*parts)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
