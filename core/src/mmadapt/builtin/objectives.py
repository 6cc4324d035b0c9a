"""Builtin objectives: cross-entropy (single-label) and binary cross-entropy (multi-label)."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt.hookspecs import hookimpl


@dataclass
class CrossEntropyConfig:
    label_smoothing: float = 0.0


@dataclass
class BCEConfig:
    #: Weight of positive targets (``pos_weight`` of ``BCEWithLogitsLoss``), 1.0 for none.
    pos_weight: float = 1.0


def build_cross_entropy(config: CrossEntropyConfig, adapter):
    import torch.nn.functional as F

    def cross_entropy(outputs, batch):
        loss = F.cross_entropy(outputs["logits"].float(), batch["label"], label_smoothing=config.label_smoothing)
        return loss, {}

    return cross_entropy


def build_bce(config: BCEConfig, adapter):
    import torch
    import torch.nn.functional as F

    def bce(outputs, batch):
        logits = outputs["logits"].float()
        pos_weight = torch.full((logits.shape[-1],), config.pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, batch["label"].float(), pos_weight=pos_weight), {}

    return bce


@hookimpl
def register_objectives(register):
    register("cross-entropy", build_cross_entropy, CrossEntropyConfig, "softmax cross-entropy on logits")
    register("bce", build_bce, BCEConfig, "binary cross-entropy with logits, for multi-label tasks")
