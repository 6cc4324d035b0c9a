"""What the parts behind a :class:`~mmadapt.engine.Run` share: processes, run folder, step count, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .skipped import SkippedImages

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .recipe import Recipe
    from .rundir import RunDir


@dataclass
class RunContext:
    """One seed's processes, folder and counters; the fit loop, passes and checkpoints read and update it."""

    recipe: Recipe
    run_dir: RunDir
    accelerator: Accelerator
    #: The plugin manager's lifecycle hooks.
    hook: Any
    #: ``(train_transform, test_transform)`` of the run's task.
    transforms: tuple[Any, Any]
    #: Optimiser steps taken so far, over every stage.
    steps: int = 0
    skipped: SkippedImages = field(default_factory=SkippedImages)
    #: The run the hooks are told about.
    front: Any = None

    @property
    def is_main(self) -> bool:
        """Whether this process writes files, logs and shows progress."""
        return self.accelerator.is_main_process

    @property
    def num_processes(self) -> int:
        """How many processes share the work (data-parallel)."""
        return self.accelerator.num_processes

    @property
    def batch_parts(self) -> int:
        """The parts whose gradients make a global batch's: ``train.exact_shards``, else the processes."""
        return self.recipe.train.exact_shards or self.num_processes

    def merge_skipped(self) -> None:
        """Unite every process's record of skipped images (collective)."""
        self.skipped.merge(self.num_processes)

    def log_step(self, stage: str, epoch: int, logs: dict[str, float]) -> None:
        """A training step's losses and learning rates: to ``metrics.jsonl`` and the ``on_step_end`` hook."""
        if self.is_main:
            self.run_dir.log({"stage": stage, "epoch": epoch, "step": self.steps, **logs})
            self.hook.on_step_end(run=self.front, step=self.steps, logs=logs)

    def log_eval(self, split: str, metrics: dict[str, float]) -> None:
        """An evaluation's metrics: to ``metrics.jsonl`` and the ``on_eval_end`` hook."""
        if self.is_main:
            self.run_dir.log({"eval": split, "step": self.steps, **metrics})
            self.hook.on_eval_end(run=self.front, split=split, metrics=metrics)

    def log_resumed(self, stage: str, epoch: int) -> None:
        """That a stage continues from its checkpoint of ``epoch``."""
        if self.is_main:
            self.run_dir.log({"resumed": stage, "epoch": epoch, "step": self.steps})
