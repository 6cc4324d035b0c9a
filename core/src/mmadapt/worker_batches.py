"""Batches from DataLoader worker processes with one shared-memory transfer per image tensor, not per key.

Every tensor a worker returns crosses to the main process as a shared-memory file of its own, and the
main process fetches each file's descriptor from the worker over a socket: a connection, and a wake-up
of the worker's resource-sharing thread, per tensor and batch. A batch's per-item integers (``index``,
a class ``label``) therefore travel as Python lists and become tensors here, in the main process; the
batches are the same, with fewer round trips than even a plain ``ImageFolder`` loop's two per batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from .data import SKIPPED_KEY, collate


class _Integers(list):
    """A batch's per-item integers on their way out of a worker; a long tensor in the main process."""


def collate_in_worker(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """:func:`~mmadapt.collate` with each key whose items are all integers (Python or 0-dim long tensors)
    as a list, which :func:`finish` turns into the tensor that ``collate`` gives."""
    kept = [item for item in items if item is not None and SKIPPED_KEY not in item]
    integer_keys = [key for key in (kept[0] if kept else {}) if all(_is_long_scalar(item[key]) for item in kept)]
    if not integer_keys:
        return collate(items)
    batch = collate([{key: value for key, value in item.items() if key not in integer_keys}
                     if item is not None and SKIPPED_KEY not in item else item for item in items])
    integers = {key: _Integers(int(item[key]) for item in kept) for key in integer_keys}
    return {**{key: integers[key] if key in integers else batch[key] for key in kept[0]},
            "skipped": batch["skipped"], "skipped_keys": batch["skipped_keys"]}


def finish(batch: dict[str, Any]) -> dict[str, Any]:
    """A batch of :func:`collate_in_worker` as :func:`~mmadapt.collate` gives it: integer lists as long tensors."""
    return {key: torch.tensor(value, dtype=torch.long) if isinstance(value, _Integers) else value
            for key, value in batch.items()}


class WorkerBatches:
    """A DataLoader with workers and :func:`collate_in_worker`, whose batches are finished in this process."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (finish(batch) for batch in self.loader)


def _is_long_scalar(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() == 0 and value.dtype == torch.long
    return isinstance(value, int) and not isinstance(value, bool)
