"""Evaluation metrics: stateful objects fed batch by batch.

Every metric has ``update(outputs, batch)``, ``compute() -> {key: float}`` and ``reset()``. A metric
that saw no usable samples reports NaN. Classification metrics read ``outputs["logits"]`` of shape
(B, C) and ``batch["label"]`` (class ids (B,) or multi-hot targets (B, C)) and report percentages
(0-100); image metrics read ``outputs["images"]`` and ``batch["target"]`` and report PSNR in dB and
SSIM as a fraction (1 for identical images).

``Metric.inputs`` names the per-sample values a metric reads from the adapter's outputs and from
the batch: a tensor with one row per item, or a list with one entry per item (images of different
sizes, see :func:`mmadapt.data.collate`). In multi-process runs each process evaluates its share of the
split; the engine gathers exactly these tensors from every process, in item order, and feeds them to
every process's metrics, so metrics never communicate themselves and every process computes the same
values.
"""

from __future__ import annotations

import dataclasses
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

    @classmethod
    def from_config(cls, config: Any = None) -> Metric:
        """The metric from its recipe section: the config's fields as keyword arguments (no config: none)."""
        return cls() if config is None else cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

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
        """Forget every sample seen so far."""
        self.correct = 0
        self.total = 0

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and labels."""
        predicted, labels = _single_label("accuracy", outputs, batch)
        self.correct += int((predicted == labels).sum())
        self.total += labels.numel()

    def compute(self) -> dict[str, float]:
        """The metric over every sample seen since the last reset."""
        return {"accuracy": 100.0 * self.correct / self.total if self.total else math.nan}


class PerClassAccuracy(Metric):
    """Mean over classes (those with test samples) of each class's accuracy.

    ``{"mean_per_class_accuracy": percent}``, plus ``class_<k>_accuracy`` per class when ``per_class``.
    """

    def __init__(self, per_class: bool = False) -> None:
        self.per_class = per_class
        super().__init__()

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self.correct = torch.zeros(0, dtype=torch.long)
        self.count = torch.zeros(0, dtype=torch.long)

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and labels."""
        predicted, labels = _single_label("per-class-accuracy", outputs, batch)
        n = max(outputs["logits"].shape[1], self.count.numel())
        self.count = _pad(self.count, n) + torch.bincount(labels, minlength=n)
        self.correct = _pad(self.correct, n) + torch.bincount(labels[predicted == labels], minlength=n)

    def compute(self) -> dict[str, float]:
        """The metric over every sample seen since the last reset."""
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
        """Forget every sample seen so far."""
        self.scores: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and labels."""
        scores, targets = _multi_label(outputs, batch)
        self.scores.append(scores)
        self.targets.append(targets)

    def compute(self) -> dict[str, float]:
        """The metric over every sample seen since the last reset."""
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
        """Forget every sample seen so far."""
        self.tp = self.fp = self.fn = torch.zeros(0, dtype=torch.long)

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Add a batch's logits and labels."""
        scores, targets = _multi_label(outputs, batch)
        predicted, positive = scores >= self.threshold, targets > 0
        n = max(scores.shape[1], self.tp.numel())
        self.tp = _pad(self.tp, n) + (predicted & positive).sum(0)
        self.fp = _pad(self.fp, n) + (predicted & ~positive).sum(0)
        self.fn = _pad(self.fn, n) + (~predicted & positive).sum(0)

    def compute(self) -> dict[str, float]:
        """The metric over every sample seen since the last reset."""
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


#: PSNR of an image equal to its target (infinite in theory), and the most any image scores. For
#: scale: every pixel off by one 8-bit level scores 48 dB; only near-exact images come close.
PSNR_CAP_DB = 100.0

#: ITU-R BT.601 luma of RGB in [0, 1], as MATLAB's ``rgb2ycbcr`` (super-resolution papers' Y PSNR).
_BT601_Y = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_BT601_Y_OFFSET = 16.0 / 255.0


class _ImageMetric(Metric):
    """The mean over images of a per-image score of ``outputs["images"]`` against ``batch["target"]``.

    Both are (B, 3, H, W) tensors or lists of (3, H, W) tensors, pixels in [0, 1]; predictions are
    clamped to [0, 1], as saving them as images would. Each image is scored on its own, so a batch
    may mix sizes; an image and its target must have the same size.
    """

    inputs = {"outputs": ("images",), "batch": ("target",)}
    key = ""

    def reset(self) -> None:
        """Forget every sample seen so far."""
        self.total = 0.0
        self.count = 0

    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
        """Score each output image of a batch against its target."""
        predictions, targets = outputs["images"], batch["target"]
        if len(predictions) != len(targets):
            raise ValueError(f"metric {self.key!r}: {len(predictions)} output images for {len(targets)} targets")
        for prediction, target in zip(predictions, targets):
            if prediction.shape != target.shape:
                raise ValueError(
                    f"metric {self.key!r}: an output image has shape {tuple(prediction.shape)} but its target "
                    f"{tuple(target.shape)}; the adapter must return images of its targets' size"
                )
            prediction = prediction.detach().double().clamp(0.0, 1.0).unsqueeze(0).cpu()
            self.total += self.score(prediction, target.detach().double().unsqueeze(0).cpu())
            self.count += 1

    def score(self, prediction: torch.Tensor, target: torch.Tensor) -> float:
        """The score of one (1, 3, H, W) prediction against its target."""
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        """The metric over every sample seen since the last reset."""
        return {self.key: self.total / self.count if self.count else math.nan}


class PeakSignalNoiseRatio(_ImageMetric):
    """Mean PSNR over images, in dB, with data range 1 (torchmetrics): ``{"psnr"}`` or ``{"psnr_y"}``.

    Each image's PSNR is capped at :data:`PSNR_CAP_DB`, so an exact reconstruction scores 100 dB
    instead of infinity and the mean stays finite. ``channel="y"`` scores the BT.601 luma only.
    """

    def __init__(self, channel: str = "rgb") -> None:
        if channel not in ("rgb", "y"):
            raise ValueError(f"psnr channel must be 'rgb' or 'y'; got {channel!r}")
        self.channel = channel
        self.key = "psnr" if channel == "rgb" else "psnr_y"
        super().__init__()

    def score(self, prediction: torch.Tensor, target: torch.Tensor) -> float:
        """PSNR of one image (of its luma with ``channel="y"``), capped at :data:`PSNR_CAP_DB`."""
        return image_psnr(prediction, target, self.channel)


def image_psnr(prediction: torch.Tensor, target: torch.Tensor, channel: str = "rgb") -> float:
    """PSNR in dB (data range 1, torchmetrics) of one image ``(3, H, W)`` or ``(1, 3, H, W)`` against its target.

    Capped at :data:`PSNR_CAP_DB`, so an exact reconstruction scores 100 dB. ``channel="y"`` scores the
    BT.601 studio-range luma (MATLAB's ``rgb2ycbcr``), the Y-PSNR of super-resolution and CLIP-LIT.
    This is what the ``psnr`` metric computes per image.
    """
    from torchmetrics.functional.image import peak_signal_noise_ratio

    if prediction.dim() == 3:
        prediction, target = prediction.unsqueeze(0), target.unsqueeze(0)
    if channel == "y":
        prediction, target = _luma(prediction), _luma(target)
    return min(float(peak_signal_noise_ratio(prediction, target, data_range=1.0)), PSNR_CAP_DB)


def _luma(images: torch.Tensor) -> torch.Tensor:
    weights = images.new_tensor(_BT601_Y).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True) + _BT601_Y_OFFSET


class StructuralSimilarity(_ImageMetric):
    """Mean SSIM over images (torchmetrics: 11x11 Gaussian window, sigma 1.5, data range 1): ``{"ssim"}``.

    The SSIM of an RGB image is the mean over its channels; 1.0 for an image equal to its target.
    Images need at least :data:`SSIM_MIN_SIDE` pixels a side (the window is reflected at borders).
    """

    key = "ssim"

    def score(self, prediction: torch.Tensor, target: torch.Tensor) -> float:
        """SSIM of one image, the mean over its channels."""
        from torchmetrics.functional.image import structural_similarity_index_measure

        if min(prediction.shape[-2:]) < SSIM_MIN_SIDE:
            raise ValueError(f"metric 'ssim' needs images of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels "
                             f"(its window is 11x11); got {tuple(prediction.shape[-2:])}")
        return float(structural_similarity_index_measure(prediction, target, data_range=1.0))


#: The smallest image side torchmetrics' SSIM accepts: it pads each side by half its 11-pixel window.
SSIM_MIN_SIDE = 6


__all__ = [
    "F1",
    "Accuracy",
    "PSNR_CAP_DB",
    "MeanAveragePrecision",
    "Metric",
    "PeakSignalNoiseRatio",
    "PerClassAccuracy",
    "StructuralSimilarity",
    "average_precision",
    "harmonic_mean",
]
