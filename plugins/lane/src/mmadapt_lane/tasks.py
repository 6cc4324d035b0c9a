"""Class orders and ``B{b}-C{c}`` task splits, and the task an incremental adapter is built for."""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass, field, fields

from mmadapt import DataBundle, Split, Task, UserError, select_classes

from .config import ClassIncrementalConfig, parse_split


@dataclass
class IncrementalTask(Task):
    """A task (multi-label or single-label) whose class ids follow the class order, cut into consecutive
    task blocks.

    Task ``t`` owns class ids ``offsets[t] .. offsets[t+1]-1``; adapters with one lane per task read
    the blocks from here when they are built.
    """

    #: Number of classes of each task, in task order; they sum to ``n_classes``.
    task_sizes: list[int] = field(default_factory=list)

    @property
    def blocks(self) -> list[range]:
        """The class ids of each task."""
        starts = [sum(self.task_sizes[:t]) for t in range(len(self.task_sizes))]
        return [range(start, start + size) for start, size in zip(starts, self.task_sizes)]


def task_blocks(task: Task) -> list[range]:
    """The class blocks of ``task``: its tasks' blocks, or one block of every class for a plain task."""
    if isinstance(task, IncrementalTask) and task.task_sizes:
        return task.blocks
    return [range(task.n_classes)]


def task_sizes(spec: str, n_classes: int, dataset: str) -> list[int]:
    """Class counts per task of a split spec over ``n_classes``; a ``UserError`` when it does not fit."""
    base, increment = parse_split(spec)
    first = base or increment
    where = f"protocol.split {spec} does not fit the {n_classes} classes of {dataset}"
    if first > n_classes:
        raise UserError(f"{where}: the first task would need {first} classes; use a smaller B or C")
    rest = n_classes - first
    if rest % increment:
        raise UserError(
            f"{where}: after the first task's {first}, the remaining {rest} classes are not a multiple of "
            f"C={increment}; choose B and C with B + k*C = {n_classes}"
        )
    sizes = [first] + [increment] * (rest // increment)
    if len(sizes) < 2:
        raise UserError(f"{where}: it gives a single task; class-incremental learning needs at least two")
    return sizes


def class_order(config: ClassIncrementalConfig, classnames: list[str]) -> list[str]:
    """The class names in task order, as the config asks; a ``UserError`` for an unusable given order."""
    names = sorted(classnames)
    if config.class_order == "alphabetical":
        return names
    if config.class_order == "dataset":
        return list(classnames)
    if config.class_order == "seeded":
        random.Random(config.order_seed).shuffle(names)
        return names
    given = list(config.classes)
    unknown = [name for name in given if name not in classnames]
    if unknown:
        hints = [f"{name!r}" + _closest(name, classnames) for name in unknown]
        raise UserError(
            f"protocol.classes names {len(unknown)} unknown class(es): {', '.join(hints)}; "
            f"the dataset's classes are {', '.join(names)}"
        )
    repeated = sorted({name for name in given if given.count(name) > 1})
    missing = [name for name in names if name not in given]
    if repeated or missing:
        problem = f"repeats {', '.join(repeated)}" if repeated else f"leaves out {', '.join(missing)}"
        raise UserError(f"protocol.classes must name every class of the dataset exactly once; it {problem}")
    return given


def _closest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def incremental_bundle(bundle: DataBundle, config: ClassIncrementalConfig) -> DataBundle:
    """The bundle relabelled in class order, its task an :class:`IncrementalTask` with the split's blocks.

    Multi-label and single-label datasets alike: the kind decides how tasks are cut and scored (see
    :func:`task_images`).
    """
    task = bundle.task
    dataset = task.name or "the dataset"
    order = class_order(config, list(task.classnames))
    sizes = task_sizes(config.split, len(order), dataset)
    reordered = select_classes(bundle, [task.classnames.index(name) for name in order])
    values = {f.name: getattr(reordered.task, f.name) for f in fields(reordered.task)}
    return DataBundle(IncrementalTask(**values, task_sizes=sizes), reordered.splits)


def task_images(split: Split, classes: range) -> list[int]:
    """The indices of ``split``'s items with any class in ``classes``.

    Single-label: the items whose class is one of them; multi-label: the items with at least one of
    them among their positives (the same image can then belong to several tasks).
    """
    if split.multi_label:
        return [i for i, labels in enumerate(split.labels) if any(c in classes for c in labels)]
    return [i for i, label in enumerate(split.labels) if label in classes]
