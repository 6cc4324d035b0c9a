"""Builtin objectives: cross-entropy (single-label), binary cross-entropy (multi-label) and KgCoOp's
pull of learned prompts toward hand-written ones (``kg-regularizer``, for text-prompt adapters)."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt.hookspecs import hookimpl


@dataclass
class CrossEntropyConfig:
    """Softmax cross-entropy on ``logits`` against integer labels."""

    #: Label smoothing of ``torch.nn.functional.cross_entropy``, 0.0 for none.
    label_smoothing: float = 0.0


@dataclass
class BCEConfig:
    """Binary cross-entropy on ``logits`` against multi-hot labels."""

    #: Weight of positive targets (``pos_weight`` of ``BCEWithLogitsLoss``), 1.0 for none.
    pos_weight: float = 1.0


@dataclass
class KgRegularizerConfig:
    """KgCoOp: cross-entropy + weight * (1 - mean cosine to the hand-written prompt features)."""

    #: Weight of the distance term; KgCoOp uses 8.0.
    weight: float = 8.0

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ValueError(f"objective.weight must be non-negative; got {self.weight}")


def build_cross_entropy(config: CrossEntropyConfig, adapter):
    """Cross-entropy of ``outputs["logits"]`` (in fp32) and ``batch["label"]``; no extra terms."""
    import torch.nn.functional as F

    def cross_entropy(outputs, batch):
        loss = F.cross_entropy(outputs["logits"].float(), batch["label"], label_smoothing=config.label_smoothing)
        return loss, {}

    return cross_entropy


def build_bce(config: BCEConfig, adapter):
    """Binary cross-entropy with logits of ``outputs["logits"]`` (in fp32) and ``batch["label"]``."""
    import torch
    import torch.nn.functional as F

    def bce(outputs, batch):
        logits = outputs["logits"].float()
        pos_weight = torch.full((logits.shape[-1],), config.pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, batch["label"].float(), pos_weight=pos_weight), {}

    return bce


def build_kg_regularizer(config: KgRegularizerConfig, adapter):
    """KgCoOp's objective; the adapter must report hand-written targets (see :mod:`mmadapt.builtin.kg`)."""
    from .kg import build_kg_regularizer as build

    return build(config.weight, adapter)


@hookimpl
def register_objectives(register):
    """The builtin objectives."""
    register("cross-entropy", build_cross_entropy, CrossEntropyConfig, "softmax cross-entropy on logits")
    register("bce", build_bce, BCEConfig, "binary cross-entropy with logits, for multi-label tasks")
    register("kg-regularizer", build_kg_regularizer, KgRegularizerConfig,
             "KgCoOp: cross-entropy + pull of learned text features toward hand-written prompt features")
