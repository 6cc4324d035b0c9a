"""Evaluation metrics: stateful objects fed batch by batch, reporting percentages (0-100).

Every metric has ``update(outputs, batch)`` (``outputs["logits"]`` of shape (B, C), ``batch["label"]``:
class ids (B,) or multi-hot targets (B, C)), ``compute() -> {key: float}`` and ``reset()``. A metric
that saw no usable samples reports NaN.

``Metric.inputs`` names the per-sample tensors (first dimension = batch) a metric reads from the
adapter's outputs and from the batch. In multi-process runs each process evaluates its share of the
split; the engine gathers exactly these tensors from every process, in item order, and feeds them to
every process's metrics, so metrics never communicate themselves and every process computes the same
values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch


def harmonic_mean(a: float, b: float) -> float:
    """``2ab / (a + b)``, the base-to-novel headline number; 0 when both are 0."""
    return 0.0 if a + b == 0 else 2.0 * a * b / (a + b)


def average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Non-interpolated average precision of one class, as a fraction.

    ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, highest first, so tied scores
    enter together (scikit-learn's ``average_precision_score``). NaN without positives.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    scores, targets = scores[order], targets[order].double()
    positives = targets.sum()
    if positives == 0:
        return math.nan
    # The last position of each run of equal scores is where that threshold's counts are complete.
    run_ends = torch.cat([scores[1:] != scores[:-1], torch.ones(1, dtype=torch.bool)])
    last = torch.nonzero(run_ends).squeeze(1)
    true_positives = torch.cumsum(targets, 0)[last]
    precision = true_positives / (last + 1).double()
    recall = true_positives / positives
    recall_gain = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((recall_gain * precision).sum())


class Metric:
    """Base class: subclasses set their state in ``reset`` and read it in ``compute``."""

    #: Per-sample tensors ``update`` reads: keys of the adapter's outputs and keys of the batch.
    inputs: dict[str, tuple[str, ...]] = {"outputs": ("logits",), "batch": ("label",)}

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every sample seen so far."""
        raise NotImplementedError

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add one batch."""
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        """The metric values over every sample since the last ``reset``."""
        raise NotImplementedError


def _single_label(name: str, outputs: dict[str, Any], batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true class ids of a single-label batch."""
    labels = batch["label"].detach().cpu()
    if labels.dim() != 1:
        raise ValueError(f"metric {name!r} needs single-label data (class ids); use 'map' or 'f1' for multi-label")
    return outputs["logits"].detach().argmax(dim=1).cpu(), labels


def _multi_label(outputs: dict[str, Any], batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid scores and multi-hot targets; single-label ids become one-hot targets."""
    logits = outputs["logits"].detach().float().cpu()
    labels = batch["label"].detach().cpu()
    if labels.dim() == 1:
        labels = torch.nn.functional.one_hot(labels.long(), logits.shape[1])
    return torch.sigmoid(logits), labels.float()


class Accuracy(Metric):
    """Top-1 accuracy: ``{"accuracy": percent}``."""

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        predicted, labels = _single_label("accuracy", outputs, batch)
        self.correct += int((predicted == labels).sum())
        self.total += labels.numel()

    def compute(self) -> dict[str, float]:
        return {"accuracy": 100.0 * self.correct / self.total if self.total else math.nan}


class PerClassAccuracy(Metric):
    """Mean over classes (those with test samples) of each class's accuracy.

    ``{"mean_per_class_accuracy": percent}``, plus ``class_<k>_accuracy`` per class when ``per_class``.
    """

    def __init__(self, per_class: bool = False) -> None:
        self.per_class = per_class
        super().__init__()

    def reset(self) -> None:
        self.correct = torch.zeros(0, dtype=torch.long)
        self.count = torch.zeros(0, dtype=torch.long)

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        predicted, labels = _single_label("per-class-accuracy", outputs, batch)
        n = max(outputs["logits"].shape[1], self.count.numel())
        self.count = _pad(self.count, n) + torch.bincount(labels, minlength=n)
        self.correct = _pad(self.correct, n) + torch.bincount(labels[predicted == labels], minlength=n)

    def compute(self) -> dict[str, float]:
        present = torch.nonzero(self.count > 0).squeeze(1).tolist()
        accuracies = {k: 100.0 * int(self.correct[k]) / int(self.count[k]) for k in present}
        values = {"mean_per_class_accuracy": sum(accuracies.values()) / len(accuracies) if accuracies else math.nan}
        if self.per_class:
            values.update({f"class_{k}_accuracy": acc for k, acc in accuracies.items()})
        return values


def _pad(counts: torch.Tensor, n: int) -> torch.Tensor:
    return torch.cat([counts, counts.new_zeros(n - counts.numel())])


class MeanAveragePrecision(Metric):
    """Macro average precision (sigmoid scores) over the classes with at least one positive: ``{"map"}``.

    ``classes`` restricts the columns to the seen classes (MULTI-LANE); it is a public attribute, so
    a class-incremental protocol can set it before each ``compute``. Scores are kept until
    ``compute``, as AP needs the full ranking.
    """

    def __init__(self, classes: Sequence[int] | None = None) -> None:
        self.classes = None if classes is None else list(classes)
        super().__init__()

    def reset(self) -> None:
        self.scores: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        scores, targets = _multi_label(outputs, batch)
        self.scores.append(scores)
        self.targets.append(targets)

    def compute(self) -> dict[str, float]:
        if not self.scores:
            return {"map": math.nan}
        scores, targets = torch.cat(self.scores), torch.cat(self.targets)
        columns = range(scores.shape[1]) if self.classes is None else self.classes
        precisions = [average_precision(scores[:, c], targets[:, c]) for c in columns if targets[:, c].any()]
        return {"map": 100.0 * sum(precisions) / len(precisions) if precisions else math.nan}


class F1(Metric):
    """Per-class and overall precision, recall and F1 of sigmoid scores at ``threshold``.

    ``cp``/``cr`` average each class's precision and recall over the (``classes``-selected) columns,
    a class without predictions or positives counting 0; ``cf1 = 2 cp cr / (cp + cr)``. ``op``/``or``
    pool the counts of all those columns; ``of1`` likewise. This is the CF1/OF1 of the multi-label
    literature (ML-GCN, MMPretrain's ``average_performance``).
    """

    def __init__(self, threshold: float = 0.8, classes: Sequence[int] | None = None) -> None:
        self.threshold = threshold
        self.classes = None if classes is None else list(classes)
        super().__init__()

    def reset(self) -> None:
        self.tp = self.fp = self.fn = torch.zeros(0, dtype=torch.long)

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        scores, targets = _multi_label(outputs, batch)
        predicted, positive = scores >= self.threshold, targets > 0
        n = max(scores.shape[1], self.tp.numel())
        self.tp = _pad(self.tp, n) + (predicted & positive).sum(0)
        self.fp = _pad(self.fp, n) + (predicted & ~positive).sum(0)
        self.fn = _pad(self.fn, n) + (~predicted & positive).sum(0)

    def compute(self) -> dict[str, float]:
        columns = list(range(self.tp.numel())) if self.classes is None else self.classes
        if not columns or self.tp.numel() == 0:
            return {key: math.nan for key in ("cp", "cr", "cf1", "op", "or", "of1")}
        tp, fp, fn = (counts[columns].double() for counts in (self.tp, self.fp, self.fn))
        cp = float(_ratio(tp, tp + fp).mean())
        cr = float(_ratio(tp, tp + fn).mean())
        op = float(_ratio(tp.sum(), (tp + fp).sum()))
        recall = float(_ratio(tp.sum(), (tp + fn).sum()))
        values = {
            "cp": cp,
            "cr": cr,
            "cf1": harmonic_mean(cp, cr),
            "op": op,
            "or": recall,
            "of1": harmonic_mean(op, recall),
        }
        return {key: 100.0 * value for key, value in values.items()}


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Elementwise ``numerator / denominator`` with 0 where the denominator is 0."""
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.zeros_like(numerator))


__all__ = [
    "F1",
    "Accuracy",
    "MeanAveragePrecision",
    "Metric",
    "PerClassAccuracy",
    "average_precision",
    "harmonic_mean",
]
