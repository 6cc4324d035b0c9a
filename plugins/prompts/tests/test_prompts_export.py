"""Every prompt method survives `adapt export` + `mmadapt.load_adapter`, and an exported CoOp takes new class names."""

from __future__ import annotations

import pytest
import torch
from mmadapt import load_adapter
from mmadapt.testing import (
    adapt_command,
    assert_export_reproduces_run,
    make_batch,
    run_recipe,
    tiny_bundle,
    tiny_recipe,
)

TRAINED = {"protocol": {"name": "standard"}, "train": {"epochs": 2, "optimizer": "adamw", "lr": 0.01}}

RUNS = {
    "coop": tiny_recipe(adapter={"name": "coop", "n_ctx": 4}, **TRAINED),
    "coop-csc": tiny_recipe(adapter={"name": "coop", "n_ctx": 2, "csc": True}, **TRAINED),
    "kgcoop": tiny_recipe(adapter={"name": "coop", "n_ctx": 4}, objective={"name": "kg-regularizer"}, **TRAINED),
    "cocoop": tiny_recipe(adapter={"name": "cocoop"}, **TRAINED),
    "latent-prompt": tiny_recipe(adapter={"name": "latent-prompt"}, **TRAINED),
    "mvlpt": tiny_recipe(adapter={"name": "mvlpt"}, **TRAINED),
}


@pytest.mark.parametrize("method", sorted(RUNS))
def test_an_exported_prompt_adapter_gives_the_runs_logits(method, tiny_plugin, tmp_path):
    run_recipe(RUNS[method], tmp_path)
    assert_export_reproduces_run(tmp_path / "run", tmp_path / "export")


def test_an_exported_coop_scores_other_class_names(tiny_plugin, tmp_path):
    run_recipe(RUNS["coop"], tmp_path)
    assert adapt_command(["export", str(tmp_path / "run"), "--out", str(tmp_path / "export")]) == 0
    loaded = load_adapter(tmp_path / "export")
    trained = loaded.classnames
    images = make_batch(tiny_bundle().split("test"), loaded.adapter.backbone, size=32)["image"]
    before = loaded.logits(images)

    # The trained names in another order and fewer: each class's prompt is encoded on its own, so its
    # column is the same.
    reordered = [trained[2], trained[0]]
    loaded.set_classnames(reordered)
    torch.testing.assert_close(loaded.logits(images), before[:, [2, 0]], atol=1e-5, rtol=0)

    unseen = ["purple", "orange", "cyan"]
    loaded.set_classnames(unseen)
    assert loaded.classnames == unseen
    predicted = loaded.classify(images)
    assert set(predicted) <= set(unseen) and len(set(predicted)) > 1, predicted
