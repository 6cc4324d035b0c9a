"""A test plugin for subprocess runs: a protocol that saves each rank's weights, and a killer hook.

``KILL_AT_STEP=N`` makes the process SIGKILL itself at step N once a checkpoint exists, like a crash;
with ``KILL_SEED=S`` only in the run of seed S.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from mmadapt import hookimpl


@dataclass
class SaveRanksConfig:
    pass


def build_save_ranks(config):
    from mmadapt.protocol import Protocol

    class SaveRanks(Protocol):
        """Train, save this rank's trainable weights, evaluate."""

        def run(self, run):
            import json

            from safetensors.torch import save_file

            run.fit("train")
            rank = run.accelerator.process_index
            weights = {k: v.contiguous() for k, v in run.adapter.trainable_state_dict().items()}
            save_file(weights, str(run.run_dir.path / f"rank{rank}.safetensors"))
            evaluated = []
            forward = run.adapter.forward
            run.adapter.forward = lambda batch: evaluated.append(len(batch["label"])) or forward(batch)
            metrics = self.evaluate(run)
            (run.run_dir.path / f"rank{rank}-eval.json").write_text(json.dumps({"items": sum(evaluated),
                                                                                "metrics": metrics}))
            return metrics

        def evaluate(self, run):
            return run.evaluate("test")

    return SaveRanks(config)


class ItemOrder:
    """100 when evaluation fed every item exactly once, in item order; 0 otherwise."""

    inputs = {"outputs": ("logits",), "batch": ("label", "index")}

    def reset(self):
        self.seen = []

    def update(self, outputs, batch):
        self.seen += batch["index"].tolist()

    def compute(self):
        return {"in_order": 100.0 if self.seen == list(range(len(self.seen))) else 0.0}


def build_item_order(config):
    metric = ItemOrder()
    metric.reset()
    return metric


@hookimpl
def register_metrics(register):
    register("item-order", build_item_order, None, "test: were the items fed once each, in order")


@hookimpl
def register_protocols(register):
    register("save-ranks", build_save_ranks, SaveRanksConfig, "train, save each rank's weights, evaluate")


@hookimpl
def on_step_end(run, step, logs):
    kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
    if os.environ.get("KILL_SEED", str(run.seed)) != str(run.seed):
        return
    if kill_at and step >= kill_at and any(run.run_dir.checkpoints.glob("*/adapter.safetensors")):
        os.kill(os.getpid(), signal.SIGKILL)
