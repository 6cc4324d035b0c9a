"""Builtin metrics: accuracy, per-class accuracy, mAP, CF1/OF1, and PSNR/SSIM of images.

Only configs and the registration live here, so loading plugins stays cheap; the factories import
:mod:`mmadapt.metrics` (torch) when a recipe builds a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import check_choice
from ..hookspecs import hookimpl


@dataclass
class PerClassAccuracyConfig:
    """Options of ``per-class-accuracy``."""

    #: Also report ``class_<k>_accuracy`` for every class with test samples.
    per_class: bool = False


@dataclass
class MapConfig:
    """Options of ``map``."""

    #: Class ids to score (the seen classes); ``None`` scores every class.
    classes: list[int] | None = None


@dataclass
class F1Config:
    """Options of ``f1``."""

    #: A class is predicted when its sigmoid score is at least this (MULTI-LANE: 0.8).
    threshold: float = 0.8
    #: Class ids to score (the seen classes); ``None`` scores every class.
    classes: list[int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"f1.threshold must be between 0 and 1 (a sigmoid score); got {self.threshold}")


@dataclass
class PsnrConfig:
    """Options of ``psnr``."""

    #: ``rgb`` scores all three channels (key ``psnr``); ``y`` the BT.601 luma only (key ``psnr_y``).
    channel: str = "rgb"

    def __post_init__(self) -> None:
        check_choice("psnr", "channel", self.channel, ("rgb", "y"))


def build_accuracy(config: Any) -> Any:
    """Top-1 accuracy."""
    from ..metrics import Accuracy

    return Accuracy()


def build_per_class_accuracy(config: PerClassAccuracyConfig) -> Any:
    """Mean per-class accuracy."""
    from ..metrics import PerClassAccuracy

    return PerClassAccuracy(per_class=config.per_class)


def build_map(config: MapConfig) -> Any:
    """Macro mAP over classes with positives."""
    from ..metrics import MeanAveragePrecision

    return MeanAveragePrecision(classes=config.classes)


def build_f1(config: F1Config) -> Any:
    """CF1/OF1 at a sigmoid threshold."""
    from ..metrics import F1

    return F1(threshold=config.threshold, classes=config.classes)


def build_psnr(config: PsnrConfig) -> Any:
    """Mean PSNR (dB) of output images against targets, capped at 100 dB per image."""
    from ..metrics import PeakSignalNoiseRatio

    return PeakSignalNoiseRatio(channel=config.channel)


def build_ssim(config: Any) -> Any:
    """Mean SSIM of output images against targets."""
    from ..metrics import StructuralSimilarity

    return StructuralSimilarity()


@hookimpl
def register_metrics(register):
    """Register the builtin metrics."""
    register("accuracy", build_accuracy, None, "Top-1 accuracy (%)")
    register("per-class-accuracy", build_per_class_accuracy, PerClassAccuracyConfig, "Mean per-class accuracy (%)")
    register("map", build_map, MapConfig, "Multi-label mean average precision over classes with positives (%)")
    register("f1", build_f1, F1Config, "Multi-label CF1/OF1 (and CP/CR/OP/OR) at a sigmoid threshold (%)")
    register("psnr", build_psnr, PsnrConfig, "Mean PSNR of outputs['images'] against batch['target'] (dB, cap 100)")
    register("ssim", build_ssim, None, "Mean SSIM of outputs['images'] against batch['target'] (1 = identical)")
