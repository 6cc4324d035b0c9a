"""The ``multitask`` protocol: train one adapter on several datasets at once (MVLPT's source stage).

The recipe's ``data:`` section is the first task and ``protocol.datasets`` lists the others. Their
classes form one merged label space (task ``t``'s classes start at its offset); the training split
is every task's few-shot training split, one after another (each task's items sampled with the run
seed and saved in ``few_shot.json``, as the ``data:`` section's are). With ``mask_logits`` each image's
softmax runs over its own task's classes only. Each task is evaluated on its own test split with
only its own classes (``<task>/<metric>``), and ``mean/<metric>`` averages the tasks.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from typing import Any

import torch
from mmadapt import DataBundle, Protocol, Run, Section, Split, UserError

from .merged import merged_split, merged_task


class MultitaskProtocol(Protocol):
    """Train on the merged tasks, then evaluate each task on its own classes."""

    def extra_datasets(self) -> dict[str, Section]:
        """The further tasks, prepared by the run like the ``data:`` section (knowledge, few-shot items)."""
        return {f"datasets.{index}": section for index, section in enumerate(self.config.datasets)}

    def prepare(self, bundle: DataBundle, extra: dict[str, DataBundle] | None = None) -> DataBundle:
        """Merge every task; the adapter serves the merged classes."""
        self.bundles = [bundle, *(extra or {}).values()]
        self.names = task_names(self.bundles)
        task = merged_task(self.bundles, self.names)
        self.task_of_class = torch.tensor(
            [t for t, part in enumerate(self.bundles) for _ in part.task.classnames], dtype=torch.long
        )
        # run() merges the training splits once it can check the data: section's settings; evaluation
        # reads each task's own test split.
        return DataBundle(task, {})

    def run(self, run: Run) -> dict[str, float]:
        """Train on every task's few-shot training split at once, then evaluate each task."""
        objective = masked_objective(run.objective, self.task_of_class) if self.config.mask_logits else None
        run.fit(self._training_split(run), stage="train", objective=objective)
        return self.evaluate(run)

    def evaluate(self, run: Run) -> dict[str, float]:
        """Each task on its own test split and classes; ``mean/<metric>`` over the tasks."""
        metrics: dict[str, float] = {}
        for name, bundle in zip(self.names, self.bundles):
            metrics.update(run.evaluate(bundle.split("test"), task=bundle.task, prefix=name))
        for metric in sorted({key.partition("/")[2] for key in metrics}):
            values = [metrics[f"{name}/{metric}"] for name in self.names if f"{name}/{metric}" in metrics]
            metrics[f"mean/{metric}"] = statistics.fmean(values)
        return metrics

    def _training_split(self, run: Run) -> Split:
        """Every task's (few-shot) training split, one after another, read with the ``data:`` section's settings."""
        data = run.recipe.data.config
        for config, name in zip((s.config for s in self.config.datasets), self.names[1:]):
            for key in ("augment", "on_bad_image"):
                if getattr(config, key) != getattr(data, key):
                    raise UserError(
                        f"protocol.datasets: task {name!r} sets {key}={getattr(config, key)!r} but data.{key} is "
                        f"{getattr(data, key)!r}; the data: section's {key} applies to every task, so set it there"
                    )
        return merged_split([bundle.split("train") for bundle in self.bundles], self.bundles, data.on_bad_image)


def masked_objective(objective: Callable, task_of_class: torch.Tensor) -> Callable:
    """``objective`` on logits where the classes of other tasks than each image's are ``-inf``."""

    def masked(outputs: dict[str, torch.Tensor], batch: dict[str, Any]):
        labels = batch["label"]
        task_of = task_of_class.to(labels.device)
        own = task_of.unsqueeze(0) == task_of[labels].unsqueeze(1)
        logits = outputs["logits"].masked_fill(~own, float("-inf"))
        return objective({**outputs, "logits": logits}, batch)

    return masked


def task_names(bundles: list[DataBundle]) -> list[str]:
    """A distinct metric prefix per task: the task's name (``task<i>`` if it has none), ``-2``... for repeats."""
    names: list[str] = []
    for index, bundle in enumerate(bundles):
        base = re.sub(r"[^\w.-]+", "-", bundle.task.name).strip("-") or f"task{index}"
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}-{count}"
        names.append(name)
    return names
