"""Several datasets as one: a merged label space in which task ``t``'s classes start at ``offsets[t]``."""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from typing import Any

from mmadapt import DataBundle, Split, Task, UserError


class MergedSplit(Split):
    """The items of several splits one after another, each label shifted by its task's offset.

    Items are loaded by the split they come from; the transform and the bad-image rule are this
    split's, so every task is read the same way.
    """

    def __init__(self, parts: list[Split], offsets: list[int], n_classes: int, on_bad_image: str = "error") -> None:
        labels = [label + offset for part, offset in zip(parts, offsets) for label in part.labels]
        super().__init__(labels, n_classes, on_bad_image=on_bad_image)
        self.parts = parts
        self.starts = [0, *accumulate(len(part) for part in parts)][:-1]

    def _load(self, i: int) -> dict[str, Any]:
        part = bisect_right(self.starts, i) - 1
        return self.parts[part]._load(i - self.starts[part])


def class_offsets(bundles: list[DataBundle]) -> list[int]:
    """Where each task's classes start in the merged label space."""
    return [0, *accumulate(bundle.task.n_classes for bundle in bundles)][:-1]


def merged_task(bundles: list[DataBundle], names: list[str]) -> Task:
    """Every task's classes in one list, in task order; the first task's templates.

    Only single-label tasks merge: a label must name one class of one task.
    """
    for bundle, name in zip(bundles, names):
        if bundle.task.kind != "single-label":
            raise UserError(f"protocol multitask: task {name!r} is {bundle.task.kind}; only single-label tasks merge")
    classnames = [name for bundle in bundles for name in bundle.task.classnames]
    return Task(classnames=classnames, templates=list(bundles[0].task.templates), name="+".join(names))


def merged_split(splits: list[Split], bundles: list[DataBundle], on_bad_image: str) -> MergedSplit:
    """One split over every task's ``splits`` entry, labels in the merged space."""
    n_classes = sum(bundle.task.n_classes for bundle in bundles)
    return MergedSplit(splits, class_offsets(bundles), n_classes, on_bad_image)
