"""MMRL's checkpoints: a killed run resumes to the same result, and the trained class list travels with the weights."""

from __future__ import annotations

import json
import signal

import pytest
from mmadapt import final_checkpoint
from mmadapt.testing import adapt_subprocess, run_recipe, tiny_recipe
from omegaconf import OmegaConf
from safetensors.torch import load_file

RECIPE = tiny_recipe(
    data={"n_classes": 4, "augment": "crop-flip"},
    adapter={"name": "mmrl", "layers": [2, 2], "text_layers": [2, 2]},
    objective={"name": "mmrl"},
    protocol={"name": "base2novel"},
    train={"epochs": 3, "batch_size": 8, "optimizer": "adamw", "lr": 0.01},
)


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_metrics_and_weights(tiny_plugin, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(RECIPE), recipe)
    run_recipe(recipe, tmp_path / "full")
    killed = adapt_subprocess(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], tmp_path,
                              kill_in_stage="train")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "train-epoch0001" in written and "train-epoch0003" not in written, written
    resumed = adapt_subprocess(["run", "--resume", str(tmp_path / "killed")], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "full" / "run" / "summary.json").read_text())
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert got[key] == expected[key], key
    full = load_file(str(final_checkpoint(tmp_path / "full" / "run") / "adapter.safetensors"))
    again = load_file(str(final_checkpoint(tmp_path / "killed") / "adapter.safetensors"))
    assert full.keys() == again.keys() and all((full[k] == again[k]).all() for k in full)
    # The trained (base) classes are saved with the weights.
    assert json.loads(bytes(full["_extra_state"].tolist()).decode()) == ["red", "green"]


def test_adapt_eval_on_other_classes_scores_them_with_the_class_token_logits(tiny_plugin, tmp_path):
    import torch
    from mmadapt import load_run
    from mmadapt.testing import adapt_command, make_batch, tiny_bundle

    run_recipe({**RECIPE, "protocol": {"name": "standard"}, "train": {**RECIPE["train"], "epochs": 1}},
               tmp_path / "out")
    run_dir = tmp_path / "out" / "run"
    # Another dataset: 6 classes the run never trained on (cross-dataset evaluation).
    assert adapt_command(["eval", str(run_dir), "data.n_classes=6"]) == 0
    (summary,) = (run_dir / "evals").glob("*/summary.json")
    accuracy = json.loads(summary.read_text())["metrics"]["test/accuracy"]

    finished = load_run(run_dir)
    adapter, other = finished.adapter, tiny_bundle(n_classes=6)
    assert adapter.on_trained_classes
    adapter.set_task(other.task)
    assert not adapter.on_trained_classes
    batch = make_batch(other.split("test"), finished.backbone, size=len(other.split("test")))
    with torch.no_grad():
        outputs = adapter(batch)
    assert torch.equal(outputs["logits"], outputs["class_logits"])
    by_class_token = (outputs["class_logits"].argmax(dim=1) == batch["label"]).float().mean().item() * 100
    assert accuracy == pytest.approx(by_class_token, abs=1e-6)
