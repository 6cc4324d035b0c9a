"""What the class-incremental protocol measures: mAP, CF1 and OF1 over seen classes, mAP per task block
(on the growing test set and on each task's own fixed set), and the summary of a run (average and
final mAP, forgetting, the task x task matrices)."""

from __future__ import annotations

import statistics
from typing import Any

from mmadapt import Metric, validate_section


class SeenClassScores(Metric):
    """mAP, CF1 and OF1 over the ``seen`` class ids and the mAP of each task block, in one pass.

    ``compute()`` gives ``map``, ``cf1``, ``of1`` and, for each block k (from 1), ``map_task<k>`` on
    every image fed and ``fixed_map_task<k>`` on the images with at least one class of blocks 1 .. k:
    the images evaluated right after task k, a fixed set however many tasks later. The parts are the
    registered ``map`` and ``f1`` metrics with their ``classes`` set, so unseen columns are never
    scored.
    """

    def __init__(self, seen: range, blocks: list[range], threshold: float) -> None:
        def build(entry: dict[str, Any]) -> Metric:
            return validate_section("metric", entry, where="protocol metrics").build()

        self.overall = build({"name": "map", "classes": list(seen)})
        self.f1 = build({"name": "f1", "threshold": threshold, "classes": list(seen)})
        self.per_task = [build({"name": "map", "classes": list(block)}) for block in blocks]
        self.fixed = [build({"name": "map", "classes": list(block)}) for block in blocks]
        self.stops = [block.stop for block in blocks]
        super().__init__()

    def _parts(self) -> list[Metric]:
        return [self.overall, self.f1, *self.per_task, *self.fixed]

    def reset(self) -> None:
        """Forget every sample seen so far."""
        for part in self._parts():
            part.reset()

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and multi-hot labels."""
        for part in [self.overall, self.f1, *self.per_task]:
            part.update(outputs, batch)
        labels = batch["label"]
        for part, stop in zip(self.fixed, self.stops):
            rows = labels[:, :stop].sum(dim=1) > 0
            if rows.any():
                part.update({"logits": outputs["logits"][rows]}, {"label": labels[rows]})

    def compute(self) -> dict[str, float]:
        """``map``, ``cf1``, ``of1`` over the seen classes and ``map_task<k>`` per block, in percent."""
        f1 = self.f1.compute()
        values = {"map": self.overall.compute()["map"], "cf1": f1["cf1"], "of1": f1["of1"]}
        for index, (part, fixed) in enumerate(zip(self.per_task, self.fixed), start=1):
            values[f"map_task{index}"] = part.compute()["map"]
            values[f"fixed_map_task{index}"] = fixed.compute()["map"]
        return values


def task_matrix(evaluations: dict[str, dict[str, float]], tasks: int, key: str = "map_task") -> list[list]:
    """``matrix[i][j]``: the mAP of task j's classes after training task i (None for j > i).

    ``key`` ``fixed_map_task`` gives the matrix on each task's fixed image set.
    """
    return [
        [evaluations[f"after_task{i + 1}"][f"{key}{j + 1}"] if j <= i else None for j in range(tasks)]
        for i in range(tasks)
    ]


def forgetting(matrix: list[list[float | None]]) -> float:
    """Mean over every task but the last of its best mAP before the last task minus its final mAP."""
    last = len(matrix) - 1
    drops = [max(matrix[i][j] for i in range(j, last)) - matrix[last][j] for j in range(last)]
    return statistics.fmean(drops)


def summary_metrics(evaluations: dict[str, dict[str, float]], tasks: int) -> dict[str, float]:
    """The headline metrics of a class-incremental run from its per-task evaluations.

    ``after_task<i>/{map,cf1,of1,map_task<j>,fixed_map_task<j>}`` as evaluated, then
    ``final/{map,cf1,of1}`` (after the last task), ``average/map`` (the mean over tasks of the mAP over
    seen classes), ``final/forgetting`` and ``final/fixed_forgetting`` (the same on the fixed sets,
    where a model whose old logits do not move scores exactly 0).
    """
    return headline_metrics(
        evaluations,
        tasks,
        ("map", "cf1", "of1"),
        "map",
        {"forgetting": "map_task", "fixed_forgetting": "fixed_map_task"},
    )


def headline_metrics(
    evaluations: dict[str, dict[str, float]],
    tasks: int,
    finals: tuple[str, ...],
    averaged: str,
    forgettings: dict[str, str],
) -> dict[str, float]:
    """Every ``after_task<i>/...`` value as evaluated, ``final/<name>`` of each of ``finals`` after the last
    task, ``average/<averaged>`` (its mean over the tasks) and ``final/<name>`` for each forgetting over the
    task matrix of ``forgettings[name]``."""
    metrics = {
        f"after_task{i}/{name}": value
        for i in range(1, tasks + 1)
        for name, value in evaluations[f"after_task{i}"].items()
    }
    final = evaluations[f"after_task{tasks}"]
    metrics.update({f"final/{name}": final[name] for name in finals})
    metrics[f"average/{averaged}"] = statistics.fmean(
        evaluations[f"after_task{i}"][averaged] for i in range(1, tasks + 1)
    )
    for name, key in forgettings.items():
        metrics[f"final/{name}"] = forgetting(task_matrix(evaluations, tasks, key))
    return metrics
