"""The optimiser over an adapter's named parameter groups, and Dassl's learning-rate schedule."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .config import TrainConfig
from .errors import UserError

if TYPE_CHECKING:
    from .adapter import Adapter


def build_optimizer(adapter: Adapter, train: TrainConfig, only: list[str] | None = None) -> torch.optim.Optimizer:
    """The optimizer over the adapter's named parameter groups (``only`` some of them), with per-group overrides."""
    groups = adapter.parameter_groups()
    unknown = sorted((set(train.param_groups) | set(only or [])) - set(groups))
    if unknown:
        raise UserError(
            f"train.param_groups names {unknown}, but adapter {type(adapter).__name__} has groups {sorted(groups)}"
        )
    param_groups = []
    for name, params in groups.items():
        if only is not None and name not in only:
            continue
        overrides = dict(train.param_groups.get(name, {}))
        params = [p for p in params if p.requires_grad]
        if params:
            param_groups.append({"name": name, "params": params, "lr": train.lr,
                                 "weight_decay": train.weight_decay, **overrides})
    if not param_groups:
        raise UserError(f"adapter {type(adapter).__name__} has no trainable parameters; use protocol: eval-only")
    if train.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=train.lr, momentum=train.momentum)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=train.lr)
    return torch.optim.Adam(param_groups, lr=train.lr)


def build_scheduler(optimizer, train: TrainConfig, epochs: int, steps_per_epoch: int, iterations: int | None = None):
    """Dassl's schedule: constant ``warmup_lr`` for the warm-up, then cosine that never reaches zero.

    With ``schedule_unit: epoch`` (Dassl) the rate for epoch e (0-based) is ``warmup_lr`` while
    e < W and ``lr/2 * (1 + cos(pi * (e - W) / T))`` after, T = epochs; per-step schedules use steps,
    T = ``iterations`` when the stage's length is given in optimiser steps.
    """
    per_step = train.schedule_unit == "step"
    total = (iterations or epochs * steps_per_epoch) if per_step else epochs
    warmup = train.warmup_epochs * (steps_per_epoch if per_step else 1)

    def factor(base_lr: float):
        def at(t: int) -> float:
            if t < warmup:
                return train.warmup_lr / base_lr
            if train.schedule == "constant":
                return 1.0
            return 0.5 * (1 + math.cos(math.pi * (t - warmup) / total))

        return at

    return torch.optim.lr_scheduler.LambdaLR(optimizer, [factor(g["lr"]) for g in optimizer.param_groups])
