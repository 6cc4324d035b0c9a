"""Few-shot sampling by Dassl's rule, and bundles reduced to sampled (or saved) item indices."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from ..errors import UserError
from .task import DataBundle

#: Validation keeps at most this many shots per class (Dassl: ``min(num_shots, 4)``).
VAL_MAX_SHOTS = 4


def sample_few_shot(labels: Sequence[int], shots: int, rng: int | random.Random) -> list[int]:
    """Indices of a ``shots``-per-class sample, by Dassl's rule (``generate_fewshot_dataset``).

    Items are grouped by label in first-appearance order; each group with at least ``shots`` items
    gives ``rng.sample(group, shots)``, a smaller group is kept whole. The indices come back in that
    order (group by group, each in ``rng.sample`` order), so the selection equals Dassl's for the
    same split file and seed. ``rng`` is a seed (a fresh ``random.Random``) or a generator to
    continue, which is how validation follows training (:func:`sample_few_shot_splits`).
    """
    if shots < 1:
        raise ValueError(f"shots must be at least 1; got {shots}")
    rng = random.Random(rng) if isinstance(rng, int) else rng
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        if label is None:
            raise UserError("few-shot sampling (data.shots) needs labeled data, and this dataset has no labels; "
                            "remove data.shots")
        if not isinstance(label, int):
            raise UserError("few-shot sampling (data.shots) needs single-label data; remove data.shots")
        groups.setdefault(label, []).append(index)
    selected: list[int] = []
    for group in groups.values():
        # ">=" matters: a group of exactly `shots` items still draws from the generator, as in Dassl.
        selected += rng.sample(group, shots) if len(group) >= shots else group
    return selected


def sample_few_shot_splits(
    train_labels: Sequence[int], val_labels: Sequence[int] | None, shots: int, seed: int
) -> dict[str, list[int]]:
    """Dassl's few-shot train and validation indices: train first, then ``min(shots, 4)`` for val.

    One ``random.Random(seed)`` serves both, in that order, as Dassl's seeded global ``random`` does.
    """
    rng = random.Random(seed)
    indices = {"train": sample_few_shot(train_labels, shots, rng)}
    if val_labels is not None:
        indices["val"] = sample_few_shot(val_labels, min(shots, VAL_MAX_SHOTS), rng)
    return indices


def apply_few_shot(bundle: DataBundle, shots: int, seed: int) -> tuple[DataBundle, dict[str, list[int]]]:
    """Sample ``shots`` per class from train (and val) and return the reduced bundle and the indices.

    Save the indices with the run: :func:`apply_indices` rebuilds the same bundle from them, even where
    the dataset's item order is machine-dependent.
    """
    val = bundle.splits.get("val")
    indices = sample_few_shot_splits(bundle.split("train").labels, val.labels if val else None, shots, seed)
    return apply_indices(bundle, indices), indices


def apply_indices(bundle: DataBundle, indices: dict[str, Sequence[int]]) -> DataBundle:
    """The bundle with each named split reduced to the given item indices (e.g. saved few-shot ones)."""
    splits = dict(bundle.splits)
    for name, chosen in indices.items():
        split = bundle.split(name)
        bad = [i for i in chosen if not 0 <= int(i) < len(split)]
        if bad:
            raise UserError(
                f"stored indices for split {name!r} do not fit the dataset ({len(split)} items; e.g. {bad[0]}); "
                "the dataset changed since they were sampled"
            )
        splits[name] = split.subset(chosen)
    return replace(bundle, splits=splits)
