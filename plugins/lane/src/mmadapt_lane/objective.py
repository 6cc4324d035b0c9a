"""``lane-bce``: binary cross-entropy on the current task's classes only (MULTI-LANE's loss)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import UserError


def build_lane_bce(config: Any, adapter: Any):
    """The objective of ``adapter``, which must say which classes its current task has (``current_classes``).

    Logits and targets of every class outside the current task are set to 0 before a mean BCE with
    logits over all classes, so those classes get no gradient and their labels are never seen;
    targets narrower than the logits (classes of later tasks) are zero-padded. An ``key_loss`` the
    adapter reports (key matching) is added.
    """
    if not callable(getattr(adapter, "current_classes", None)):
        raise UserError(
            f"objective lane-bce masks every class outside the current task, which adapter {type(adapter).__name__} "
            "does not track; use adapter multi-lane or seq-prompt, or objective bce"
        )

    def lane_bce(outputs: dict[str, Any], batch: dict[str, Any]):
        logits = outputs["logits"].float()
        targets = batch["label"].float()
        if targets.dim() != 2:
            raise UserError("objective lane-bce needs multi-label targets (a multi-hot row per image)")
        if targets.shape[1] < logits.shape[1]:
            targets = F.pad(targets, (0, logits.shape[1] - targets.shape[1]))
        classes = adapter.current_classes()
        if classes is not None:
            current = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
            current[classes.start : classes.stop] = True
            logits = torch.where(current, logits, torch.zeros_like(logits))
            targets = torch.where(current, targets, torch.zeros_like(targets))
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        if "key_loss" not in outputs:
            return loss, {}
        return loss + outputs["key_loss"], {"bce": loss.detach(), "key_loss": outputs["key_loss"].detach()}

    return lane_bce
