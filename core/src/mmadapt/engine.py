"""The run that protocols drive: ``fit`` a stage, ``evaluate`` a split, a frozen ``features`` pass, ``state``.

A :class:`Run` is one seed of a recipe on HF Accelerate, and a small front: the fit loop
(:mod:`mmadapt.fitting`), metric feeding (:mod:`mmadapt.evaluation`), the sharded pass
(:mod:`mmadapt.passes`), the feature cache (:mod:`mmadapt.feature_cache`), checkpoints
(:mod:`mmadapt.stage_checkpoints`) and the skip record (:mod:`mmadapt.skipped`) sit behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .checkpoints import Checkpoint, RunState, check_stage_name
from .data import Split
from .errors import UserError
from .evaluation import evaluate_split, fresh_metrics, serving
from .feature_cache import FeatureCache
from .fitting import check_stage_length, fit_stage
from .passes import PerSample, sharded_pass, split_label, to_device
from .processes import in_step
from .run_context import RunContext
from .stage_checkpoints import load_weights, restore_protocol_state

if TYPE_CHECKING:
    from .adapter import Adapter
    from .data import DataBundle, Task
    from .metrics import Metric
    from .recipe import Recipe


class Run:
    """One seed of a recipe: what protocols drive and lifecycle hooks observe.

    Protocols read ``recipe``, ``bundle``, ``adapter`` and ``objective``, train and evaluate through
    the methods, keep what they compute in ``state`` and write files with :meth:`save_json` and
    :meth:`save_figure`. Built by the runner (:func:`mmadapt.runner.build_run`).
    """

    def __init__(self, context: RunContext, bundle: DataBundle, adapter: Adapter, objective: Callable) -> None:
        self._context, self._bundle, self._adapter, self._objective = context, bundle, adapter, objective
        context.front = self
        self._features = FeatureCache(context)
        self._state = RunState()
        restore_protocol_state(context, self._state)

    @property
    def state(self) -> RunState:
        """The protocol's own state (tensors and JSON values), saved with every checkpoint; change its entries."""
        return self._state

    @property
    def recipe(self) -> Recipe:
        """The validated recipe of this seed."""
        return self._context.recipe

    @property
    def bundle(self) -> DataBundle:
        """The run's data, as the protocol's ``prepare`` left it."""
        return self._bundle

    @property
    def adapter(self) -> Adapter:
        """The adapter being trained; the same object for the whole run."""
        return self._adapter

    @property
    def objective(self) -> Callable:
        """The recipe's objective ``(outputs, batch) -> (loss, terms)``, for a protocol to wrap."""
        return self._objective

    @property
    def seed(self) -> int:
        """The seed of this run."""
        return self.recipe.seed

    @property
    def steps(self) -> int:
        """Optimiser steps taken so far, over every stage."""
        return self._context.steps

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress (hooks run there)."""
        return self._context.is_main

    @property
    def num_processes(self) -> int:
        """How many processes share the work (data-parallel); each batch is split over them."""
        return self._context.num_processes

    @property
    def batch_parts(self) -> int:
        """The parts (processes, or ``train.exact_shards``) whose averaged gradients make a batch's gradient:
        a loss term that sums over the batch's items instead of averaging multiplies by this count."""
        return self._context.batch_parts

    @property
    def folder(self) -> Path:
        """The run directory, to read (``checkpoints/``); write with :meth:`save_json` and :meth:`save_figure`."""
        return self._context.run_dir.path

    def fit(self, split: str | Split = "train", *, stage: str = "train", epochs: int | None = None,
            iterations: int | None = None, groups: list[str] | None = None, objective: Callable | None = None,
            batch_size: int | None = None) -> None:
        """Train one stage of the adapter on ``split`` (a split name of the run's data, or a ``Split``).

        The stage lasts ``epochs`` (default ``train.epochs``) or ``iterations`` optimiser steps (the
        last epoch is then cut short). Only the parameter groups in ``groups`` train (default: all);
        every other parameter gets no gradient during the stage and is not clipped. ``objective``
        (``(outputs, batch) -> (loss, terms)``) replaces the recipe's for this stage, ``batch_size``
        replaces ``train.batch_size``. Each stage has its own optimiser and schedule. ``stage`` names
        the checkpoints (letters, digits, ``_.-``): a stage whose final checkpoint exists is loaded and
        skipped, a started one resumes from its newest checkpoint. Collective, like :meth:`evaluate`.
        """
        check_stage_name(stage)
        check_stage_length(stage, epochs, iterations, batch_size)
        in_step(f"Run.fit(stage={stage!r})", self.num_processes)
        augment = self.recipe.data.config.augment != "none"
        label = split_label(self._bundle, split, stage)
        dataset = self._features.serve(self._adapter, self._split(split), label, augment)
        if len(dataset) == 0:
            raise UserError(f"split {label!r} is empty; nothing to train on")
        fit_stage(self._context, self._adapter, self._state, dataset, objective or self._objective, stage=stage,
                  epochs=epochs, iterations=iterations, groups=groups,
                  batch_size=batch_size or self.recipe.train.batch_size)

    def evaluate(self, split: str | Split = "test", *, task: Task | None = None, metrics: list[Metric] | None = None,
                 prefix: str | None = None) -> dict[str, float]:
        """Evaluate the adapter on ``split``; keys are ``<prefix>/<metric>`` (prefix: the split's name).

        ``task`` switches the adapter to another class list for this evaluation and back after it
        (base-to-novel's new classes). ``metrics`` (metric objects, reset before use) replace the
        recipe's ``eval.metrics``, e.g. mAP over the classes seen so far. Collective: in a data-parallel
        run every process calls it; each evaluates its share and all get the same numbers.
        """
        prefix = prefix or split_label(self._bundle, split, "split")
        in_step(f"Run.evaluate(prefix={prefix!r})", self.num_processes)
        with serving(self._adapter, task):
            label = split_label(self._bundle, split, prefix)
            dataset = self._features.serve(self._adapter, self._split(split), label, augment=False)
            results = evaluate_split(self._context, self._adapter, dataset, fresh_metrics(self._context, metrics),
                                     prefix)
        self._context.log_eval(prefix, results)
        return results

    def features(self, split: str | Split, fn: Callable[[dict], dict[str, PerSample]], *,
                 desc: str | None = None) -> dict[str, PerSample]:
        """A frozen pass: ``fn(batch)`` over every item of ``split`` with the test transform, without gradients.

        ``fn`` gets each batch on the run's device under its precision and returns per-sample values
        (a tensor with one row per item, or a list). The result holds them for every item, in item
        order, with ``"index"``; in a data-parallel run each process computes its share and all get
        the whole result. Empty when nothing was readable. Collective, like :meth:`evaluate`.
        """
        desc = desc or f"features {split_label(self._bundle, split, 'split')}"
        in_step(f"Run.features({desc!r})", self.num_processes)
        dataset = self._split(split).with_transform(self._context.transforms[1])
        accelerator = self._context.accelerator

        def on_device(batch: dict) -> dict[str, PerSample]:
            with accelerator.autocast():
                values = fn(to_device(batch, accelerator.device))
            return {"index": batch["index"], **values}

        return sharded_pass(self._context, dataset, on_device, desc)

    def save_json(self, name: str, payload: Any) -> None:
        """Write ``payload`` as JSON to ``name`` in the run directory, on the main process only (atomically)."""
        if self.is_main:
            self._context.run_dir.write_json(name, payload)

    def save_figure(self, name: str, figure: Any) -> None:
        """Write a figure (matplotlib ``Figure`` or PIL image) to ``name`` in the run directory, on the main process.

        Compute what the figure shows on every process (``features`` and ``evaluate`` are collective)
        and call this on every process too; only the main one writes. The format follows the suffix.
        """
        if self.is_main:
            self._context.run_dir.write_figure(name, figure)

    def load_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint's adapter weights and protocol state (``adapt eval``, a finished run)."""
        load_weights(self._adapter, checkpoint, checkpoint.weights())
        checkpoint.load_state_into(self._state)

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` records of the run besides its metrics: parameters, steps, skipped images.

        Collective: every process's skip record is merged first.
        """
        in_step("Run.summary()", self.num_processes)
        self._context.merge_skipped()
        return {"params": self._adapter.parameter_counts(), "steps": self.steps,
                "skipped_images": self._context.skipped.count}

    def _split(self, split: str | Split) -> Split:
        return self._bundle.split(split) if isinstance(split, str) else split
