"""Adapter.on_epoch_end: called after every epoch of every stage, without gradients, before the epoch's checkpoint."""

from __future__ import annotations

from collections.abc import Callable

import torch
from mmadapt import Protocol, hookimpl
from mmadapt.builtin.baselines import LinearProbe
from mmadapt.builtin.config import LinearProbeConfig
from mmadapt.checkpoints import read_checkpoints
from mmadapt.testing import run_recipe, tiny_recipe


class EpochCounter(LinearProbe):
    """A linear probe that records every epoch end and counts them in a persistent buffer."""

    calls: list[tuple[str, int, int, bool]] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("epochs_ended", torch.zeros(()))

    def on_epoch_end(self, stage: str, epoch: int, epochs: int) -> None:
        EpochCounter.calls.append((stage, epoch, epochs, torch.is_grad_enabled()))
        self.epochs_ended += 1


class TwoStages(Protocol):
    """``two-stages``: a warm-up stage of one epoch, then ``train`` for the recipe's epochs."""

    def run(self, run) -> dict[str, float]:
        run.fit(stage="warmup", epochs=1)
        run.fit(stage="train")
        return {}

    def evaluate(self, run) -> dict[str, float]:
        return {}


class EpochEndPlugin:
    @hookimpl
    def register_adapters(self, register: Callable[..., None]) -> None:
        register("epoch-counter", EpochCounter, LinearProbeConfig, "linear probe counting epoch ends")

    @hookimpl
    def register_protocols(self, register: Callable[..., None]) -> None:
        register("two-stages", TwoStages, None, "warm-up stage, then train")


def test_every_epoch_end_is_called_before_its_checkpoint(register_plugin, tiny_plugin, tmp_path):
    register_plugin(EpochEndPlugin(), "epoch-end")
    EpochCounter.calls = []
    run_recipe(tiny_recipe(adapter={"name": "epoch-counter"}, protocol={"name": "two-stages"},
                           train={"epochs": 3, "keep_checkpoints": 5}), tmp_path)
    assert EpochCounter.calls == [("warmup", 1, 1, False), ("train", 1, 3, False), ("train", 2, 3, False),
                                  ("train", 3, 3, False)]
    # Each checkpoint holds the buffer as the epoch end left it: the call came before the checkpoint.
    counted = {(c.stage, c.epoch): float(c.weights()["epochs_ended"]) for c in read_checkpoints(tmp_path / "run")}
    assert counted == {("warmup", 1): 1.0, ("train", 1): 2.0, ("train", 2): 3.0, ("train", 3): 4.0}
