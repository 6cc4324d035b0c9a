"""Stacking items into batches, with unreadable items dropped and counted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data.dataloader import default_collate

#: The only key of what a split returns for an unreadable item in skip mode: the item's name (its
#: file path, or its position in the split that loads it).
SKIPPED_KEY = "skipped_key"


def collate(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack items into a batch, dropping skipped bad images (``{SKIPPED_KEY: name}`` or ``None``).

    Each key is collated on its own with PyTorch's ``default_collate``, except a tensor whose shape
    differs between the items (image-to-image images of different sizes): it becomes a list of the
    items' tensors, one per item, in batch order. Equal shapes stack into one tensor as before, so
    adapters of image-to-image tasks accept ``batch["image"]`` as a (B, 3, H, W) tensor or a list of
    (3, H, W) tensors.

    The batch holds ``"skipped"``, the number of dropped items, and ``"skipped_keys"``, the names of
    those that carry one. Both travel with the batch, so they survive DataLoader worker processes;
    the engine counts each unreadable item once in the run summary, however often it is met. A batch
    whose items were all skipped holds only these two keys (no ``"index"``), and the engine must not
    feed it to the model. Unlabeled items give a batch without ``"label"``.
    """
    skipped = [item for item in items if item is None or SKIPPED_KEY in item]
    kept = [item for item in items if item is not None and SKIPPED_KEY not in item]
    batch = {key: _collate_values([item[key] for item in kept]) for key in kept[0]} if kept else {}
    batch["skipped"] = len(skipped)
    batch["skipped_keys"] = [item[SKIPPED_KEY] for item in skipped if item is not None]
    return batch


def _collate_values(values: list[Any]) -> Any:
    if all(isinstance(value, torch.Tensor) for value in values) and len({value.shape for value in values}) > 1:
        return values
    return default_collate(values)
