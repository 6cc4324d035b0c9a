"""Class subsets of a bundle: CoOp's base/new split and a relabelled selection of classes."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

from .task import DataBundle


def split_base_new(labels: int | Iterable[int]) -> tuple[list[int], list[int]]:
    """CoOp's base/new classes: sorted labels, base = first ceil(n/2), new = the rest.

    ``labels`` is a class count or the training labels (CoOp takes the label set of the few-shot
    training split). Sample shots first, then split: the order CoOp uses.
    """
    classes = list(range(labels)) if isinstance(labels, int) else sorted(set(labels))
    middle = math.ceil(len(classes) / 2)
    return classes[:middle], classes[middle:]


def select_classes(bundle: DataBundle, class_ids: Sequence[int]) -> DataBundle:
    """The bundle restricted to ``class_ids``, relabelled ``class_ids[k] -> k`` in the task and every split."""
    task = bundle.task
    classnames = [task.classnames[c] for c in class_ids]
    knowledge = None
    if task.knowledge is not None:
        knowledge = {name: task.knowledge[name] for name in classnames if name in task.knowledge}
    keywords = None
    if task.keywords is not None:
        keywords = {name: task.keywords[name] for name in classnames if name in task.keywords}
    return DataBundle(
        task=replace(task, classnames=classnames, knowledge=knowledge, keywords=keywords),
        splits={name: split.select_classes(class_ids) for name, split in bundle.splits.items()},
    )


def base_new_bundles(bundle: DataBundle) -> tuple[DataBundle, DataBundle]:
    """Base-to-novel: the base-class and new-class bundles over the task's classes.

    CoOp splits the label set of its training split; for the standard datasets that is every class
    of the task, and splitting the task's classes stays right when a small split misses a class.
    """
    base, new = split_base_new(bundle.task.n_classes)
    return select_classes(bundle, base), select_classes(bundle, new)
