"""``lane-bce`` and ``lane-ce``: losses on the current task's classes only (MULTI-LANE's losses for
multi-label and single-label class-incremental learning)."""

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
    _check_adapter("lane-bce", adapter, "bce")
    _check_kind("lane-bce", adapter, "multi-label", "lane-ce")

    def lane_bce(outputs: dict[str, Any], batch: dict[str, Any]):
        logits = outputs["logits"].float()
        targets = batch["label"].float()
        if targets.dim() != 2:
            raise UserError(
                "objective lane-bce needs multi-label targets (a multi-hot row per image); "
                "for single-label data use objective lane-ce"
            )
        if targets.shape[1] < logits.shape[1]:
            targets = F.pad(targets, (0, logits.shape[1] - targets.shape[1]))
        classes = adapter.current_classes()
        if classes is not None:
            current = _current_mask(classes, logits)
            logits = torch.where(current, logits, torch.zeros_like(logits))
            targets = torch.where(current, targets, torch.zeros_like(targets))
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        return _with_key_loss(loss, outputs, "bce")

    return lane_bce


def build_lane_ce(config: Any, adapter: Any):
    """Softmax cross-entropy over the current task's classes, for single-label data.

    The logits of every class outside the current task are set to -inf before the cross-entropy
    (the reference's fill value), so they take no probability and get a gradient of exactly 0: the
    task is a classification among its own classes only. Every training image of a task has a class
    of that task, which the class-incremental protocol guarantees. An ``key_loss`` the adapter
    reports (key matching) is added.
    """
    _check_adapter("lane-ce", adapter, "cross-entropy")
    _check_kind("lane-ce", adapter, "single-label", "lane-bce")

    def lane_ce(outputs: dict[str, Any], batch: dict[str, Any]):
        logits = outputs["logits"].float()
        targets = batch["label"]
        if targets.dim() != 1:
            raise UserError(
                "objective lane-ce needs single-label targets (one class id per image); "
                "for multi-label data use objective lane-bce"
            )
        classes = adapter.current_classes()
        if classes is not None:
            outside = targets.lt(classes.start) | targets.ge(classes.stop)
            if bool(outside.any()):
                raise ValueError(
                    f"objective lane-ce got class {int(targets[outside][0])} while training the task of classes "
                    f"{classes.start}..{classes.stop - 1}; a task's batches hold only its own classes"
                )
            current = _current_mask(classes, logits)
            logits = torch.where(current, logits, torch.full_like(logits, float("-inf")))
        loss = F.cross_entropy(logits, targets.long())
        return _with_key_loss(loss, outputs, "ce")

    return lane_ce


def _check_adapter(objective: str, adapter: Any, plain: str) -> None:
    if not callable(getattr(adapter, "current_classes", None)):
        raise UserError(
            f"objective {objective} masks every class outside the current task, which adapter "
            f"{type(adapter).__name__} does not track; use adapter multi-lane or seq-prompt, or objective {plain}"
        )


def _check_kind(objective: str, adapter: Any, kind: str, other: str) -> None:
    """Refuse a dataset of the other kind when the objective is built, before any training step."""
    task = getattr(adapter, "task", None)
    actual = getattr(task, "kind", kind)
    if actual != kind:
        raise UserError(
            f"objective {objective} needs a {kind} dataset, but {task.name or 'the dataset'} is {actual}; "
            f"use objective {other} (objective.name={other})"
        )


def _current_mask(classes: range, logits: torch.Tensor) -> torch.Tensor:
    current = torch.zeros(logits.shape[1], dtype=torch.bool, device=logits.device)
    current[classes.start : classes.stop] = True
    return current


def _with_key_loss(loss: torch.Tensor, outputs: dict[str, Any], name: str):
    if "key_loss" not in outputs:
        return loss, {}
    return loss + outputs["key_loss"], {name: loss.detach(), "key_loss": outputs["key_loss"].detach()}
