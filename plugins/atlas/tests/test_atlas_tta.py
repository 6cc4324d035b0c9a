"""Test-time adaptation (``atlas-tta``): the trusted set, the weak-to-strong objective, a run, and exact resume."""

from __future__ import annotations

import json
import signal

import pytest
import torch
from mmadapt import final_checkpoint, load_run
from mmadapt.testing import adapt_subprocess, run_recipe, tiny_bundle, tiny_recipe
from mmadapt_atlas.tta import TwoViewSplit, fixmatch_objective, strong_view, trusted_items
from omegaconf import OmegaConf
from safetensors.torch import load_file


def tta_recipe(vector_files, **protocol):
    return tiny_recipe(name="tta", adapter={"name": "atlas", "vectors": vector_files},
                       protocol={"name": "atlas-tta", "threshold": 0.3, "trusted_per_class": 2, **protocol},
                       train={"epochs": 3, "batch_size": 8, "optimizer": "adamw", "lr": 0.1, "weight_decay": 0.1})


def test_the_trusted_set_is_the_most_confident_items_of_each_predicted_class():
    probabilities = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.2, 0.8]])
    assert trusted_items(probabilities, 2).tolist() == [True, False, True, True, False, True]
    assert not trusted_items(probabilities, 0).any()


def test_the_objective_trains_the_strong_view_towards_trusted_or_confident_labels():
    weak = torch.tensor([[5.0, 0.0], [0.0, 5.0], [0.1, 0.0]])  # confident 0, confident 1, unsure
    strong = torch.zeros(3, 2, requires_grad=True)
    batch = {"trusted": torch.tensor([0, 0, 1], dtype=torch.uint8), "zeroshot_label": torch.tensor([1, 1, 1])}
    loss, terms = fixmatch_objective(0.9)({"logits": weak, "strong_logits": strong}, batch)
    loss.backward()
    # Items 0 and 1 follow their weak prediction (0, 1); item 2 is trusted and follows its zero-shot label 1.
    assert strong.grad[0, 0] < 0 < strong.grad[0, 1]
    assert strong.grad[1, 1] < 0 < strong.grad[1, 0] and strong.grad[2, 1] < 0
    assert terms["kept"] == 1.0
    loss, terms = fixmatch_objective(0.999)({"logits": weak, "strong_logits": strong}, batch)
    assert terms["kept"] == pytest.approx(1 / 3)


def test_the_two_views_carry_no_label():
    source = tiny_bundle().split("test")
    views = TwoViewSplit(source, torch.zeros(len(source), dtype=torch.long), torch.ones(len(source), dtype=torch.uint8),
                         strong_view(32, 2, 9))
    item = views[0]
    assert "label" not in item and not views.labeled
    assert {"image", "strong_image", "zeroshot_label", "trusted"} <= set(item)


def test_a_tta_run_adapts_the_coefficients_without_labels(tiny_plugin, tmp_path, vector_files):
    summary = run_recipe(tta_recipe(vector_files), tmp_path)
    assert {"initial/test/accuracy", "test/accuracy"} <= set(summary["metrics"])
    assert summary["steps"] == 3 * 4  # 32 test items in batches of 8, three epochs
    assert load_run(tmp_path / "run").adapter.coefficients.abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["atlas-tta", "standard"])
def test_a_run_killed_during_training_resumes_to_the_same_metrics(tiny_plugin, tmp_path, vector_files, protocol):
    recipe_map = tta_recipe(vector_files)
    if protocol == "standard":
        recipe_map["protocol"] = {"name": "standard"}
        recipe_map["data"] = {**recipe_map["data"], "augment": "crop-flip"}
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(recipe_map), recipe)
    stage = "tta" if protocol == "atlas-tta" else "train"

    run_recipe(recipe, tmp_path / "full")  # uninterrupted, in this process
    killed = adapt_subprocess(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], tmp_path,
                              kill_in_stage=stage)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert f"{stage}-epoch0001" in written and f"{stage}-epoch0003" not in written, written

    resumed = adapt_subprocess(["run", "--resume", str(tmp_path / "killed")], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "full" / "run" / "summary.json").read_text())
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert got[key] == expected[key], key
    full = load_file(str(final_checkpoint(tmp_path / "full" / "run") / "adapter.safetensors"))["coefficients"]
    assert full.abs().sum() > 0
    resumed_weights = load_file(str(final_checkpoint(tmp_path / "killed") / "adapter.safetensors"))
    assert torch.equal(resumed_weights["coefficients"], full)


def test_an_adapter_without_a_strong_view_is_refused_before_training(tiny_plugin, tmp_path):
    from mmadapt import UserError

    recipe = tiny_recipe(adapter={"name": "zeroshot"}, protocol={"name": "atlas-tta"})
    with pytest.raises(UserError, match=r"protocol atlas-tta needs an adapter whose forward also scores"):
        run_recipe(recipe, tmp_path)
