"""Vectors from finished runs (full fine-tune, LoRA) and plain merged weights of a trained atlas run."""

from __future__ import annotations

import pytest
import torch
from atlas_testing import make_atlas
from mmadapt import load_run
from mmadapt.testing import adapt_command, make_batch, run_recipe, tiny_bundle, tiny_recipe
from mmadapt.testing_models import tiny_openclip_backbone, tiny_openclip_model
from mmadapt_atlas.vectors import load_vector
from safetensors.torch import load_file


def finished_run(tmp_path, name, adapter, **train):
    recipe = tiny_recipe(name=name, adapter=adapter, protocol={"name": "standard"},
                         train={"epochs": 2, "optimizer": "adamw", "lr": 0.01, **train})
    run_recipe(recipe, tmp_path / name)
    return tmp_path / name / "run"


@pytest.fixture
def batch():
    return make_batch(tiny_bundle().split("test"), tiny_openclip_backbone(), size=16)


@pytest.mark.parametrize("adapter", [{"name": "finetune"}, {"name": "lora", "r": 2}], ids=["finetune", "lora"])
def test_a_runs_vector_at_one_gives_the_runs_logits(tiny_plugin, tmp_path, batch, adapter, capsys):
    run_dir = finished_run(tmp_path, adapter["name"], adapter)
    assert adapt_command(["atlas", "vectors", str(run_dir), "--out", str(tmp_path / "vectors"), "--dtype", "fp32"]) == 0
    path = tmp_path / "vectors" / "run.safetensors"
    assert str(path) in capsys.readouterr().out
    vector = load_vector(path)
    assert vector.task == "tiny-colours" and vector.metadata["adapter"] == adapter["name"]
    atlas = make_atlas(tiny_openclip_backbone(), tiny_bundle().task, [path], allow_own_task=True)
    with torch.no_grad():
        atlas.coefficients[:] = 1.0
        logits = atlas(batch)["logits"]
        expected = load_run(run_dir).adapter(batch)["logits"]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_a_run_that_left_the_image_tower_alone_gives_no_vector(tiny_plugin, tmp_path, capsys):
    run_dir = finished_run(tmp_path, "probe", {"name": "linear-probe"})
    assert adapt_command(["atlas", "vectors", str(run_dir), "--out", str(tmp_path / "vectors")]) == 2
    assert "left the image tower unchanged (adapter linear-probe)" in capsys.readouterr().err


def test_merged_weights_give_the_runs_logits_in_a_plain_open_clip_model(tiny_plugin, tmp_path, batch,
                                                                        vector_files, capsys):
    run_dir = finished_run(tmp_path, "atlas", {"name": "atlas", "vectors": vector_files}, lr=0.1)
    trained = load_run(run_dir).adapter
    assert trained.coefficients.abs().sum() > 0
    out = tmp_path / "merged.safetensors"
    assert adapt_command(["atlas", "merge", str(run_dir), "--out", str(out)]) == 0
    assert "open_clip model state_dict" in capsys.readouterr().out
    plain = tiny_openclip_model()
    plain.load_state_dict(load_file(str(out)))
    with torch.no_grad():
        expected = trained(batch)
        features = plain.encode_image(batch["image"], normalize=True)
        logits = plain.logit_scale.exp() * features @ trained.class_embeddings.t()
    torch.testing.assert_close(features, expected["features"], atol=1e-6, rtol=0)
    torch.testing.assert_close(logits, expected["logits"], atol=1e-6, rtol=1e-6)


def test_merge_refuses_a_run_of_another_adapter(tiny_plugin, tmp_path, capsys):
    run_dir = finished_run(tmp_path, "probe", {"name": "linear-probe"})
    assert adapt_command(["atlas", "merge", str(run_dir), "--out", str(tmp_path / "merged.safetensors")]) == 2
    assert "adapter linear-probe is not atlas" in capsys.readouterr().err
