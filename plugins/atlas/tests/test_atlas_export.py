"""An exported atlas run carries its task vectors, reproduces the run, and merges into plain open_clip weights."""

from __future__ import annotations

import shutil

import open_clip
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


def atlas_run(tmp_path, vector_files):
    recipe = tiny_recipe(adapter={"name": "atlas", "vectors": vector_files}, protocol={"name": "standard"},
                         train={"epochs": 2, "optimizer": "adamw", "lr": 0.1})
    run_recipe(recipe, tmp_path / "atlas")
    return tmp_path / "atlas" / "run"


def test_an_exported_atlas_needs_only_its_folder(tiny_plugin, tmp_path, vector_files):
    run_dir = atlas_run(tmp_path, vector_files)
    assert_export_reproduces_run(run_dir, tmp_path / "export")
    expected = load_adapter(tmp_path / "export")
    batch = make_batch(tiny_bundle().split("test"), expected.adapter.backbone, size=16)
    logits = expected.logits(batch["image"])
    for path in vector_files:  # the vectors the run read are gone; the export has its own copies
        shutil.move(path, f"{path}.moved")
    torch.testing.assert_close(load_adapter(tmp_path / "export").logits(batch["image"]), logits, atol=0, rtol=0)


def test_a_merged_atlas_export_gives_the_runs_logits_in_plain_open_clip(tiny_plugin, tmp_path, vector_files):
    run_dir = atlas_run(tmp_path, vector_files)
    out = tmp_path / "export"
    assert adapt_command(["export", str(run_dir), "--out", str(out), "--merge"]) == 0
    loaded = load_adapter(out)
    assert loaded.adapter.coefficients.abs().sum() > 0
    batch = make_batch(tiny_bundle().split("test"), loaded.adapter.backbone, size=16)
    plain = open_clip.create_model(f"local-dir:{out / 'merged'}").eval()
    with torch.no_grad():
        features = plain.encode_image(batch["image"], normalize=True)
        logits = plain.logit_scale.exp() * features @ loaded.adapter.class_embeddings.t()
    torch.testing.assert_close(logits, loaded.logits(batch["image"]), atol=1e-5, rtol=0)
