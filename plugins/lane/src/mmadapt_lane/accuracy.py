"""What the class-incremental protocol measures on single-label data: top-1 accuracy over the seen
classes, each task's accuracy on its own test images, task-aware accuracy, and a run's summary
(average incremental accuracy, final accuracy, forgetting, the task x task matrix)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
from mmadapt import Metric

from .scores import headline_metrics


class SeenClassAccuracy(Metric):
    """Top-1 accuracy of single-label predictions made over the ``seen`` classes only, in percent.

    ``compute()`` gives ``acc`` (every image fed; the prediction is the argmax over the seen
    classes' logits, so classes of later tasks never compete), ``acc_task<k>`` for each block k
    (from 1: the images whose class is in block k, the same argmax), ``task_mean_acc`` (the mean of
    the ``acc_task<k>``, the reference's "average accuracy") and ``task_aware_acc`` (the argmax
    within the block of each image's own class: accuracy when the task is known).
    """

    def __init__(self, seen: range, blocks: list[range]) -> None:
        if seen.start != 0 or any(block.stop > seen.stop for block in blocks):
            raise ValueError(f"the seen classes {seen} must start at 0 and hold every block {blocks}")
        self.seen = seen
        self.blocks = blocks
        super().__init__()

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self.correct = torch.zeros(len(self.blocks), dtype=torch.long)
        self.aware = torch.zeros(len(self.blocks), dtype=torch.long)
        self.count = torch.zeros(len(self.blocks), dtype=torch.long)

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and class ids."""
        labels = batch["label"].detach().cpu()
        if labels.dim() != 1:
            raise ValueError("seen-class accuracy needs single-label data (one class id per image)")
        logits = outputs["logits"].detach().float().cpu()
        predicted = logits[:, : self.seen.stop].argmax(dim=1)
        for index, block in enumerate(self.blocks):
            rows = (labels >= block.start) & (labels < block.stop)
            if not rows.any():
                continue
            within = logits[rows, block.start : block.stop].argmax(dim=1) + block.start
            self.count[index] += int(rows.sum())
            self.correct[index] += int((predicted[rows] == labels[rows]).sum())
            self.aware[index] += int((within == labels[rows]).sum())

    def compute(self) -> dict[str, float]:
        """``acc``, ``task_aware_acc``, ``task_mean_acc`` and ``acc_task<k>`` per block, in percent."""
        total = int(self.count.sum())
        per_task = [_percent(int(c), int(n)) for c, n in zip(self.correct, self.count)]
        measured = [value for value in per_task if not math.isnan(value)]
        values = {
            "acc": _percent(int(self.correct.sum()), total),
            "task_aware_acc": _percent(int(self.aware.sum()), total),
            "task_mean_acc": statistics.fmean(measured) if measured else math.nan,
        }
        values.update({f"acc_task{k}": value for k, value in enumerate(per_task, start=1)})
        return values


def _percent(correct: int, total: int) -> float:
    return 100.0 * correct / total if total else math.nan


def accuracy_summary(evaluations: dict[str, dict[str, float]], tasks: int) -> dict[str, float]:
    """The headline metrics of a single-label class-incremental run from its per-task evaluations.

    ``after_task<i>/{acc,task_aware_acc,task_mean_acc,acc_task<j>}`` as evaluated, then
    ``final/{acc,task_aware_acc,task_mean_acc}`` (after the last task), ``average/acc`` (average
    incremental accuracy: the mean over tasks of the accuracy over seen classes) and
    ``final/forgetting`` (over the ``acc_task`` matrix: each task's images are a fixed set).
    """
    return headline_metrics(
        evaluations, tasks, ("acc", "task_aware_acc", "task_mean_acc"), "acc", {"forgetting": "acc_task"}
    )
