"""Implementations of the builtin protocols."""

from __future__ import annotations

from mmadapt.data import DataBundle, base_new_bundles
from mmadapt.engine import Run
from mmadapt.metrics import harmonic_mean
from mmadapt.protocol import Protocol


def initial_metrics(protocol: Protocol, run: Run) -> dict[str, float]:
    """The protocol's evaluation before training, keyed ``initial/...``, when the config asks for it."""
    if not protocol.config.evaluate_initial:
        return {}
    return {f"initial/{key}": value for key, value in protocol.evaluate(run).items()}


class EvalOnlyProtocol(Protocol):
    """Evaluate the adapter as built, without training."""

    def evaluate(self, run: Run) -> dict[str, float]:
        """The configured split with the recipe's metrics."""
        return run.evaluate(self.config.split)


class StandardProtocol(Protocol):
    """Train on one split, then evaluate on another."""

    def run(self, run: Run) -> dict[str, float]:
        """Train on the train split (after the initial evaluation, when asked), then evaluate."""
        initial = initial_metrics(self, run)
        run.fit(self.config.train_split)
        return {**initial, **self.evaluate(run)}

    def evaluate(self, run: Run) -> dict[str, float]:
        """The test split with the recipe's metrics."""
        return run.evaluate(self.config.test_split)


class Base2NovelProtocol(Protocol):
    """CoOp's base-to-novel protocol: train on base classes, test base and new, report their HM.

    Few-shot sampling has already happened over all classes; base = the first ceil(n/2) labels,
    new = the rest, each relabelled from 0.
    """

    def prepare(self, bundle: DataBundle) -> DataBundle:
        """Keep the base classes for the adapter; the new ones wait for evaluation."""
        self.base, self.new = base_new_bundles(bundle)
        return self.base

    def run(self, run: Run) -> dict[str, float]:
        """Train on the base classes (adapters without trainable parameters are not trained), then evaluate."""
        initial = initial_metrics(self, run)
        if run.adapter.parameter_counts()["trainable"]:  # zero-shot baselines are evaluated as they are
            run.fit("train")
        return {**initial, **self.evaluate(run)}

    def evaluate(self, run: Run) -> dict[str, float]:
        """Base classes on the test split, new classes on theirs, and the harmonic mean of each metric."""
        metrics = run.evaluate("test", prefix="base")
        metrics.update(run.evaluate(self.new.split("test"), task=self.new.task, prefix="new"))
        for key in list(metrics):
            split, _, name = key.partition("/")
            if split == "base" and f"new/{name}" in metrics:
                metrics[f"hm/{name}"] = harmonic_mean(metrics[key], metrics[f"new/{name}"])
        return metrics
