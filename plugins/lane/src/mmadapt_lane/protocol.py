"""The ``class-incremental`` and ``joint`` protocols on the Run API.

``class-incremental``: task t trains (stage ``task<t>``, its own fresh optimiser and schedule) on
every training image with any class of task t, with only task t's labels; then the test images
with any seen class are scored over the seen classes: mAP, CF1 and OF1 for multi-label data, top-1
accuracy for single-label data. The adapter is told when each task starts and ends. Per-task
evaluations live in ``run.state``, so a resumed run does not evaluate again. ``joint`` trains the
same classes all at once (the upper bound) and scores them like the last task.
"""

from __future__ import annotations

import sys
import typing
from dataclasses import fields
from typing import Any

from mmadapt import DataBundle, Protocol, Run, Split, UserError

from .accuracy import SeenClassAccuracy, accuracy_summary
from .plot import map_per_task_figure
from .scores import SeenClassScores, summary_metrics, task_matrix
from .tasks import IncrementalTask, incremental_bundle, task_images

#: Files every class-incremental run writes into its run directory: the results, and the figure of
#: mAP (multi-label) or accuracy (single-label) after each task.
RESULTS, FIGURE, ACCURACY_FIGURE = "class_incremental.json", "map_per_task.png", "accuracy_per_task.png"


@typing.runtime_checkable
class IncrementalAdapter(typing.Protocol):
    """An adapter that is told when each task starts and ends (multi-lane, seq-prompt)."""

    def start_task(self, index: int) -> None:
        """Task ``index`` begins training."""

    def end_task(self, index: int) -> None:
        """Task ``index`` is learned: evaluation now serves tasks 0 .. index."""

    def serve_tasks(self, count: int) -> None:
        """Evaluate on the first ``count`` tasks (a saved adapter after ``count`` tasks)."""


class ClassIncremental(Protocol):
    """Learn the tasks of a ``B{b}-C{c}`` split one after another; evaluate over seen classes after each."""

    name = "class-incremental"
    adapter_interface = IncrementalAdapter

    def prepare(self, bundle: DataBundle) -> DataBundle:
        """Relabel the classes in class order and cut them into the split's tasks."""
        prepared = incremental_bundle(bundle, self.config)
        self.blocks = prepared.task.blocks
        self.multi_label = prepared.task.multi_label
        return prepared

    def run(self, run: Run) -> dict[str, Any]:
        """Train task after task, evaluating after each; return the summary metrics."""
        check_weight_decay(run.recipe.train)
        train = run.bundle.split(self.config.train_split)
        evaluations = dict(run.state.get("evaluations", {}))
        for index, block in enumerate(self.blocks):
            run.adapter.start_task(index)
            run.fit(task_split(train, block), stage=f"task{index + 1}")
            run.adapter.end_task(index)
            key = f"after_task{index + 1}"
            if key not in evaluations:
                evaluations[key] = self._scores(run, index + 1, prefix=key)
                run.state["evaluations"] = evaluations
        summary = summary_metrics if self.multi_label else accuracy_summary
        metrics = summary(evaluations, len(self.blocks))
        self._write(run, evaluations, metrics)
        return metrics

    def evaluate(self, run: Run) -> dict[str, float]:
        """The adapter after every task: ``final/...`` over all classes."""
        run.adapter.serve_tasks(len(self.blocks))
        return {f"final/{k}": v for k, v in self._scores(run, len(self.blocks), prefix="final").items()}

    def _scores(self, run: Run, tasks: int, prefix: str) -> dict[str, float]:
        """Scores over the classes of the first ``tasks`` tasks, on the test images with any of them."""
        seen = range(self.blocks[tasks - 1].stop)
        test = run.bundle.split(self.config.test_split)
        split = test.subset(task_images(test, seen))
        if self.multi_label:
            metric = SeenClassScores(seen, self.blocks[:tasks], self.config.threshold)
        else:
            metric = SeenClassAccuracy(seen, self.blocks[:tasks])
        results = run.evaluate(split, metrics=[metric], prefix=prefix)
        return {key.partition("/")[2]: value for key, value in results.items()}

    def _write(self, run: Run, evaluations: dict[str, dict[str, float]], metrics: dict[str, float]) -> None:
        classnames = run.bundle.task.classnames
        tasks = len(self.blocks)
        headline = "map" if self.multi_label else "acc"
        curve = [evaluations[f"after_task{i}"][headline] for i in range(1, tasks + 1)]
        results = {"tasks": [[classnames[c] for c in block] for block in self.blocks], headline: curve}
        if self.multi_label:
            results["matrix"] = task_matrix(evaluations, tasks)
            results["fixed_matrix"] = task_matrix(evaluations, tasks, "fixed_map_task")
        else:
            results["matrix"] = task_matrix(evaluations, tasks, "acc_task")
        run.save_json(RESULTS, {**results, "metrics": metrics})
        label, name = ("mAP", FIGURE) if self.multi_label else ("accuracy", ACCURACY_FIGURE)
        try:
            figure = map_per_task_figure({run.recipe.adapter.name: curve}, run.recipe.name, measure=label)
            run.save_figure(name, figure)
        except UserError as error:  # matplotlib missing: the numbers are written, the figure is not
            if run.is_main:
                print(f"warning: {error}; {name} not drawn", file=sys.stderr)


class Joint(ClassIncremental):
    """Every class of the split's tasks at once, in one stage: the upper bound of class-incremental learning."""

    name = "joint"
    #: Any adapter: an incremental one is told that its single task starts and ends.
    adapter_interface = None

    def prepare(self, bundle: DataBundle) -> DataBundle:
        """The class-incremental data with one task of every class, so adapters build a single lane."""
        prepared = super().prepare(bundle)
        values = {f.name: getattr(prepared.task, f.name) for f in fields(prepared.task)}
        values["task_sizes"] = [prepared.task.n_classes]
        return DataBundle(IncrementalTask(**values), prepared.splits)

    def run(self, run: Run) -> dict[str, Any]:
        """Train on every training image with all its labels, then evaluate like the last task."""
        incremental = isinstance(run.adapter, IncrementalAdapter)
        if incremental:
            run.adapter.start_task(0)
        run.fit(self.config.train_split, stage="joint")
        if incremental:
            run.adapter.end_task(0)
        return self.evaluate(run)

    def evaluate(self, run: Run) -> dict[str, float]:
        """``final/...`` over all classes, with the mAP of each task block of the split."""
        if isinstance(run.adapter, IncrementalAdapter):
            run.adapter.serve_tasks(1)
        return {f"final/{k}": v for k, v in self._scores(run, len(self.blocks), prefix="final").items()}


def task_split(train: Split, block: range) -> Split:
    """The training images with any class of ``block``, labelled with those classes only."""
    return train.subset(task_images(train, block), label_map={c: c for c in block})


def check_weight_decay(train: Any) -> None:
    """Refuse weight decay: it moves the slices and head rows of old tasks, which must stay fixed."""
    decays = {"train.weight_decay": train.weight_decay}
    decays.update(
        {
            f"train.param_groups.{name}.weight_decay": group["weight_decay"]
            for name, group in train.param_groups.items()
            if "weight_decay" in group
        }
    )
    for key, value in decays.items():
        if value != 0:
            raise UserError(
                f"{key} is {value}, but protocol class-incremental needs 0: weight decay moves the parameters of "
                f"earlier tasks, whose gradients are zero, and breaks their isolation; set {key}=0"
            )
