"""The protocol-facing Run API: stages over parameter groups, per-stage objective and length, state, resume."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import runtime_plugin
import torch
from mmadapt import UserError
from mmadapt.testing import run_recipe, tiny_recipe
from omegaconf import OmegaConf
from plugin_dists import run_adapt
from safetensors.torch import load_file


def three_stage_recipe(**protocol):
    return tiny_recipe(
        adapter={"name": "two-groups"},
        protocol={"name": "three-stages", **protocol},
        train={"batch_size": 8, "optimizer": "sgd", "lr": 0.05, "log_every": 1, "schedule_unit": "step"},
    )


@pytest.fixture
def runtime(tiny_plugin, register_plugin):
    return register_plugin(runtime_plugin, "mmadapt-testing-runtime")


def test_each_stage_trains_only_its_groups_with_its_objective_and_length(runtime, tmp_path):
    summary = run_recipe(three_stage_recipe(), tmp_path)
    run_dir = tmp_path / "run"
    report = json.loads((run_dir / "stages.json").read_text())
    for stage in ("a", "b"):
        assert report[stage]["others_identical"], stage
        assert report[stage]["others_without_grad"], stage
        assert report[stage]["others_frozen_in_stage"], stage
        assert report[stage]["others_trainable_after"], stage
    # 64 training items: A is 2 epochs of batches of 8, B 40 steps of batches of 4, C one epoch of 8.
    assert [report[s]["steps"] for s in ("a", "b", "c")] == [16, 56, 64]
    assert summary["steps"] == 64
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    by_stage = {stage: [e for e in logged if e.get("stage") == stage] for stage in "abc"}
    assert all("smoothed" in e for e in by_stage["b"]) and not any("smoothed" in e for e in by_stage["a"])
    assert {k for e in by_stage["a"] for k in e if k.startswith("lr/")} == {"lr/a"}
    assert {k for e in by_stage["b"] for k in e if k.startswith("lr/")} == {"lr/b"}
    assert {k for e in by_stage["c"] for k in e if k.startswith("lr/")} == {"lr/a", "lr/b"}
    assert summary["metrics"]["test/accuracy"] > 50  # the head learned the colours (4 classes: chance 25)
    stage_folders = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert {"a-epoch0002", "b-epoch0003", "c-epoch0001"} <= set(stage_folders)


def test_fit_rejects_bad_stage_names_and_lengths(runtime, tmp_path, monkeypatch):
    from mmadapt.engine import Run

    calls = []
    fit = Run.fit

    def probe(self, split="train", **kwargs):
        for bad in ({"stage": "warm up"}, {"stage": "a/b"}, {"stage": ""}, {"stage": "x", "epochs": 0},
                    {"stage": "x", "epochs": 1, "iterations": 2}, {"stage": "x", "iterations": 1.5}):
            with pytest.raises(UserError) as error:
                fit(self, split, **bad)
            calls.append(str(error.value))
        return fit(self, split, **kwargs)

    monkeypatch.setattr(Run, "fit", probe)
    run_recipe(three_stage_recipe(b_iterations=2), tmp_path)
    assert "cannot name a checkpoint" in calls[0] and "cannot name a checkpoint" in calls[2]
    assert "epochs must be a positive integer" in calls[3]
    assert "not both" in calls[4]
    assert "iterations must be a positive integer" in calls[5]


@pytest.mark.slow
def test_a_run_killed_in_stage_b_resumes_to_the_same_result(env_dir, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(three_stage_recipe()), recipe)
    full = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "full")], path=env_dir)
    assert full.returncode == 0, full.stderr

    # Stage A ends at step 16 and B's first epoch at step 32; step 40 is inside B's second epoch.
    killed = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], path=env_dir,
                       env={"KILL_AT_STEP": "40"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "b-epoch0001" in written and not any(name.startswith("c-") for name in written)

    resumed = run_adapt(["run", "--resume", str(tmp_path / "killed")], path=env_dir)
    assert resumed.returncode == 0, resumed.stderr
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed_summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert resumed_summary[key] == full_summary[key], key
    assert resumed_summary["metrics"]["state/rounds"] == 1.0
    full_weights = load_file(str(tmp_path / "full" / "final.safetensors"))
    resumed_weights = load_file(str(tmp_path / "killed" / "final.safetensors"))
    assert full_weights.keys() == resumed_weights.keys() == {"a", "b", "scale"}
    for name in full_weights:
        assert torch.equal(full_weights[name], resumed_weights[name]), name


class CountItems:
    """Items seen, as a metric object a protocol passes to run.evaluate(metrics=...)."""

    inputs = {"outputs": ("logits",), "batch": ("index",)}

    def reset(self):
        self.seen = []

    def update(self, outputs, batch):
        self.seen += batch["index"].tolist()

    def compute(self):
        return {"items": float(len(self.seen)), "in_order": float(self.seen == sorted(self.seen))}


def test_evaluate_switches_task_and_metrics_and_features_pass_in_item_order(tiny_plugin, register_plugin, tmp_path):
    from mmadapt import DataBundle, Protocol, hookimpl, select_classes

    seen = {}

    class Probe(Protocol):
        def run(self, run):
            bundle = DataBundle(run.adapter.task, dict(run.bundle.splits))
            first_two = select_classes(bundle, [0, 1])
            before = run.adapter.task
            metrics = run.evaluate(first_two.split("test"), task=first_two.task, metrics=[CountItems()],
                                   prefix="two")
            seen["task_restored"] = run.adapter.task is before
            features = run.features("test", lambda batch: {"mean": batch["image"].mean(dim=(1, 2, 3))})
            seen["index"] = features["index"].tolist()
            seen["mean"] = features["mean"]
            return {**metrics, **run.evaluate("test")}

    class ProbePlugin:
        @hookimpl
        def register_protocols(self, register):
            register("probe-api", lambda config: Probe(config), None, "test")

    register_plugin(ProbePlugin(), "probe")
    summary = run_recipe(tiny_recipe(protocol={"name": "probe-api"}, eval={"batch_size": 5}), tmp_path)
    metrics = summary["metrics"]
    assert metrics["two/items"] == 16 and metrics["two/in_order"] == 1.0  # 8 test images of each of 2 classes
    assert "two/accuracy" not in metrics and "test/accuracy" in metrics
    assert seen["task_restored"]
    assert seen["index"] == list(range(32)) and seen["mean"].shape == (32,)


def test_save_json_and_save_figure_write_on_the_main_process_only(tiny_plugin, plugin_manager, tmp_path):
    import types

    from mmadapt.recipe import validate_recipe
    from mmadapt.rundir import RunDir
    from mmadapt.runner import build_run
    from PIL import Image

    recipe = validate_recipe(OmegaConf.create(tiny_recipe()), "tiny.yaml", [], registry=plugin_manager.registry)
    run, _ = build_run(recipe, RunDir.create("tiny", tmp_path), plugin_manager)
    run.save_json("results.json", {"a": 1})
    run.save_figure("grid.png", Image.new("RGB", (4, 4)))
    assert json.loads((tmp_path / "results.json").read_text()) == {"a": 1}
    assert Image.open(tmp_path / "grid.png").size == (4, 4)
    run._context.accelerator = types.SimpleNamespace(is_main_process=False)
    run.save_json("other.json", {"a": 2})
    run.save_figure("other.png", Image.new("RGB", (4, 4)))
    assert not (tmp_path / "other.json").exists() and not (tmp_path / "other.png").exists()


def test_the_run_front_stays_small():
    """The loops, passes, checkpoints and records live in their own modules; Run only fronts them."""
    import mmadapt.engine

    assert len(Path(mmadapt.engine.__file__).read_text(encoding="utf-8").splitlines()) <= 200
