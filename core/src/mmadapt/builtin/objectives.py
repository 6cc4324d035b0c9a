"""Builtin objectives: cross-entropy (single-label) and binary cross-entropy (multi-label). KgCoOp's
``kg-regularizer`` lives in :mod:`mmadapt.builtin.kg`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import BCEConfig, CrossEntropyConfig


def build_cross_entropy(config: CrossEntropyConfig, adapter):
    """Cross-entropy of ``outputs["logits"]`` (in fp32) and ``batch["label"]``; no extra terms."""

    def cross_entropy(outputs, batch):
        loss = F.cross_entropy(outputs["logits"].float(), batch["label"], label_smoothing=config.label_smoothing)
        return loss, {}

    return cross_entropy


def build_bce(config: BCEConfig, adapter):
    """Binary cross-entropy with logits of ``outputs["logits"]`` (in fp32) and ``batch["label"]``."""

    def bce(outputs, batch):
        logits = outputs["logits"].float()
        pos_weight = torch.full((logits.shape[-1],), config.pos_weight, device=logits.device)
        return F.binary_cross_entropy_with_logits(logits, batch["label"].float(), pos_weight=pos_weight), {}

    return bce
