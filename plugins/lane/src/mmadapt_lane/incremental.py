"""The base of adapters that learn tasks one after another: which task trains, which tasks are served."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from mmadapt import Adapter, Backbone, Task
from torch import nn

from .tasks import IncrementalTask, task_blocks


class IncrementalAdapter(Adapter):
    """An adapter the class-incremental protocol drives with :meth:`start_task`, :meth:`end_task` and
    :meth:`serve_tasks`.

    Its task's class blocks (:class:`IncrementalTask`, one block of every class for a plain task)
    are fixed when it is built; ``class_masks[t]`` marks task t's classes. Outside the protocol it
    serves every task.
    """

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        self.class_blocks = task_blocks(task)
        masks = torch.zeros(len(self.class_blocks), task.n_classes, dtype=torch.bool)
        for index, block in enumerate(self.class_blocks):
            masks[index, block.start : block.stop] = True
        self.register_buffer("class_masks", masks, persistent=False)
        self.current: int | None = None
        self.seen = len(self.class_blocks)

    @classmethod
    def task_from_export(cls, fields: dict[str, Any]) -> Task:
        """The exported task with its task blocks (an :class:`IncrementalTask` when it had any)."""
        if not fields.get("task_sizes"):
            return super().task_from_export(fields)
        known = {field.name for field in dataclasses.fields(IncrementalTask)}
        return IncrementalTask(**{name: value for name, value in fields.items() if name in known})

    @property
    def num_tasks(self) -> int:
        """The number of tasks the adapter was built for."""
        return len(self.class_blocks)

    def start_task(self, index: int) -> None:
        """Task ``index`` begins training."""
        self._check_task(index)
        self._begin(index)
        self.current, self.seen = index, index + 1
        self.clear_eval_cache()

    def end_task(self, index: int) -> None:
        """Task ``index`` is learned: evaluation now serves tasks 0 .. index."""
        self._check_task(index)
        self.current, self.seen = None, index + 1
        self.clear_eval_cache()

    def serve_tasks(self, count: int) -> None:
        """Evaluate on the first ``count`` tasks (a saved adapter after ``count`` tasks)."""
        self._check_task(count - 1)
        self.current, self.seen = None, count
        self.clear_eval_cache()

    def current_classes(self) -> range | None:
        """The class ids of the task being trained, or None outside a task."""
        return None if self.current is None else self.class_blocks[self.current]

    def seen_mask(self) -> torch.Tensor:
        """(n_classes,) True for the classes of the served tasks."""
        return self.class_masks[: self.seen].any(dim=0)

    def _begin(self, index: int) -> None:
        """What a subclass does when task ``index`` starts (MULTI-LANE's warm start); nothing by default."""

    def _check_task(self, index: int) -> None:
        if not 0 <= index < self.num_tasks:
            raise ValueError(f"task {index} does not exist; the adapter has tasks 0 .. {self.num_tasks - 1}")


def reference_orthogonal(*shape: int) -> torch.Tensor:
    """A tensor of ``shape`` from ``nn.init.orthogonal_``, which flattens it to ``shape[0]`` orthonormal rows.

    The reference code initialises the whole selector tensor (T, S, d) and each layer's prompt tensor
    (2, T, P, d) this way: T (or 2) unit rows of S x d (or T x P x d) entries, so each entry is small
    (root mean square ``1 / sqrt(S x d)``), not a unit-norm row per token.
    """
    tensor = torch.empty(shape)
    nn.init.orthogonal_(tensor)
    return tensor


def linear_head(width: int, n_classes: int) -> nn.Linear:
    """The shared classifier: weights from a normal of std 0.02, zero bias (timm's ViT head init, which the
    reference code gets from timm; its truncation at ±2 is 100 standard deviations out, so it never acts)."""
    head = nn.Linear(width, n_classes)
    nn.init.trunc_normal_(head.weight, std=0.02)
    nn.init.zeros_(head.bias)
    return head
