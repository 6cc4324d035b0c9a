"""Implementations of the builtin protocols."""

from __future__ import annotations

from dataclasses import replace

from mmadapt.data import DataBundle, base_new_bundles
from mmadapt.engine import Run
from mmadapt.metrics import harmonic_mean
from mmadapt.protocol import Protocol


def initial_metrics(protocol: Protocol, run: Run) -> dict[str, float]:
    """The protocol's evaluation before training, keyed ``initial/...``, when the config asks for it."""
    if not protocol.config.evaluate_initial:
        return {}
    return {f"initial/{key}": value for key, value in protocol.evaluate(run).items()}


class ZeroShotProtocol(Protocol):
    """Evaluate the adapter as built, without training."""

    def evaluate(self, run: Run) -> dict[str, float]:
        return run.evaluate(self.config.split)


class StandardProtocol(Protocol):
    """Train on one split, then evaluate on another."""

    def run(self, run: Run) -> dict[str, float]:
        initial = initial_metrics(self, run)
        run.fit(self.config.train_split)
        return {**initial, **self.evaluate(run)}

    def evaluate(self, run: Run) -> dict[str, float]:
        return run.evaluate(self.config.test_split)


class Base2NovelProtocol(Protocol):
    """CoOp's base-to-novel protocol: train on base classes, test base and new, report their HM.

    Few-shot sampling has already happened over all classes; base = the first ceil(n/2) labels,
    new = the rest, each relabelled from 0.
    """

    def prepare(self, bundle: DataBundle) -> DataBundle:
        self.base, self.new = base_new_bundles(bundle)
        return self.base

    def run(self, run: Run) -> dict[str, float]:
        initial = initial_metrics(self, run)
        if run.adapter.parameter_counts()["trainable"]:  # zero-shot baselines are evaluated as they are
            run.fit("train")
        return {**initial, **self.evaluate(run)}

    def evaluate(self, run: Run) -> dict[str, float]:
        metrics = run.evaluate("test", prefix="base")
        run.bundle = replace(run.bundle, splits={**run.bundle.splits, "test_new": self.new.splits["test"]})
        run.adapter.set_task(self.new.task)
        metrics.update(run.evaluate("test_new", prefix="new"))
        run.adapter.set_task(self.base.task)
        for key in list(metrics):
            split, _, name = key.partition("/")
            if split == "base" and f"new/{name}" in metrics:
                metrics[f"hm/{name}"] = harmonic_mean(metrics[key], metrics[f"new/{name}"])
        return metrics
