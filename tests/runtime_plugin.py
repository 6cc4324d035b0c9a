"""A test plugin for subprocess runs: a protocol that saves each rank's weights, a three-stage protocol
with a two-group adapter, a protocol that runs a frozen pass on the main process only, and a killer hook.

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
    from mmadapt import Protocol

    class SaveRanks(Protocol):
        """Train, save this rank's trainable weights, evaluate."""

        def run(self, run):
            import json

            from safetensors.torch import save_file

            run.fit("train")
            rank = int(os.environ.get("RANK", "0"))  # each process keeps its own copy: written by hand
            weights = {k: v.contiguous() for k, v in run.adapter.trainable_state_dict().items()}
            save_file(weights, str(run.folder / f"rank{rank}.safetensors"))
            evaluated = []
            forward = run.adapter.forward
            run.adapter.forward = lambda batch: evaluated.append(len(batch["label"])) or forward(batch)
            metrics = self.evaluate(run)
            (run.folder / f"rank{rank}-eval.json").write_text(json.dumps({"items": sum(evaluated),
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


@dataclass
class TwoGroupsConfig:
    pass


def build_two_groups(config, backbone, task):
    import torch
    from mmadapt import Adapter

    class TwoGroups(Adapter):
        """Logits ``scale * (features @ a.T) + b`` on frozen image features: groups ``a`` and ``b``."""

        frozen_image_features = True

        def __init__(self):
            super().__init__(config, backbone, task)
            generator = torch.Generator().manual_seed(0)
            self.a = torch.nn.Parameter(0.01 * torch.randn(task.n_classes, backbone.embed_dim, generator=generator))
            self.b = torch.nn.Parameter(torch.zeros(task.n_classes))
            self.scale = torch.nn.Parameter(torch.ones(()))

        def parameter_groups(self):
            return {"a": [self.a], "b": [self.b, self.scale]}

        def forward(self, batch):
            return {"logits": self.scale * self.image_features(batch) @ self.a.t() * 10 + self.b}

    return TwoGroups()


@dataclass
class ThreeStagesConfig:
    b_iterations: int = 40
    b_batch_size: int = 4


def build_three_stages(config):

    import torch
    import torch.nn.functional as F
    from mmadapt import Protocol

    class ThreeStages(Protocol):
        """A trains group a with the recipe's objective, B trains b with label smoothing, C trains both.

        Writes ``stages.json``: per stage, whether the other group stayed bit-identical, kept no
        ``.grad`` and was frozen while the stage trained.
        """

        def run(self, run):
            report = {}
            groups = run.adapter.parameter_groups()
            frozen_seen = []

            def watching(objective, others):
                def wrapped(outputs, batch):
                    frozen_seen.append(all(not p.requires_grad for p in others))
                    return objective(outputs, batch)
                return wrapped

            def smoothed(outputs, batch):
                loss = F.cross_entropy(outputs["logits"], batch["label"], label_smoothing=0.2)
                return loss, {"smoothed": loss}

            stages = [("a", ["a"], {"epochs": 2}, run.objective),
                      ("b", ["b"], {"iterations": config.b_iterations, "batch_size": config.b_batch_size}, smoothed),
                      ("c", None, {"epochs": 1}, run.objective)]
            for stage, trained, length, objective in stages:
                others = [p for name, params in groups.items() if trained and name not in trained for p in params]
                before = [p.detach().clone() for p in others]
                frozen_seen.clear()
                run.fit("train", stage=stage, groups=trained, objective=watching(objective, others), **length)
                report[stage] = {
                    "others_identical": all(torch.equal(p, q) for p, q in zip(others, before)),
                    "others_without_grad": all(p.grad is None for p in others),
                    "others_frozen_in_stage": all(frozen_seen),
                    "others_trainable_after": all(p.requires_grad for p in others),
                    "steps": run.steps,
                }
                if stage == "a" and "marker" not in run.state:
                    run.state["marker"] = torch.randn(3)
                    run.state["rounds"] = {"done": ["a"]}
            run.save_json("stages.json", report)
            weights = {k: v.contiguous() for k, v in run.adapter.trainable_state_dict().items()}
            from safetensors.torch import save_file

            if run.is_main:
                save_file(weights, str(run.folder / "final.safetensors"))
            return {**self.evaluate(run), "state/marker": float(run.state["marker"].sum()),
                    "state/rounds": float(len(run.state["rounds"]["done"]))}

        def evaluate(self, run):
            return run.evaluate("test")

    return ThreeStages(config)


@dataclass
class MainOnlyPassConfig:
    pass


def build_main_only_pass(config):
    from mmadapt import Protocol

    class MainOnlyPass(Protocol):
        """Evaluate, then a frozen pass on the main process only: the mistake that hangs a data-parallel run."""

        def run(self, run):
            metrics = self.evaluate(run)
            if run.is_main:
                run.features("test", lambda batch: {"label": batch["label"]}, desc="main only")
            return metrics

        def evaluate(self, run):
            return run.evaluate("test")

    return MainOnlyPass(config)


@hookimpl
def register_adapters(register):
    register("two-groups", build_two_groups, TwoGroupsConfig, "test: a linear head in two parameter groups")


@hookimpl
def register_metrics(register):
    register("item-order", build_item_order, None, "test: were the items fed once each, in order")


@hookimpl
def register_protocols(register):
    register("save-ranks", build_save_ranks, SaveRanksConfig, "train, save each rank's weights, evaluate")
    register("three-stages", build_three_stages, ThreeStagesConfig, "test: stages a, b, c over two groups")
    register("main-only-pass", build_main_only_pass, MainOnlyPassConfig, "test: a frozen pass on the main process")


@hookimpl
def on_step_end(run, step, logs):
    kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
    if os.environ.get("KILL_SEED", str(run.seed)) != str(run.seed):
        return
    if kill_at and step >= kill_at and any((run.folder / "checkpoints").glob("*/adapter.safetensors")):
        os.kill(os.getpid(), signal.SIGKILL)
