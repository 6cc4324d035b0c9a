"""Tests of mmadapt-clip-adapter on mmadapt's tiny offline components.

The fixtures (``plugin_manager``, ``tiny_plugin``, ``tiny_backbone``, ``tiny_task``, ``tiny_batch``)
come from ``mmadapt.testing``, a pytest plugin installed with mmadapt: no conftest.py needed. Run
``pip install -e .`` first, so the entry point is installed.
"""

from __future__ import annotations

from pathlib import Path

import torch
from mmadapt.testing import (
    adapt_command,
    assert_adapter_contract,
    assert_import_is_cheap,
    run_recipe,
    tiny_recipe_from,
    train_steps,
)

from mmadapt_clip_adapter.adapter import ClipAdapter
from mmadapt_clip_adapter.config import ClipAdapterConfig

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mmadapt_clip_adapter"
RECIPE = PACKAGE / "recipes" / "clip-adapter-shapes.yaml"


def test_the_entry_point_registers_the_adapter_and_the_command(plugin_manager):
    for kind in ("adapter", "command"):
        assert plugin_manager.registry.get(kind, "clip-adapter").distribution == "mmadapt-clip-adapter"


def test_the_plugin_and_command_modules_are_cheap_to_import():
    assert_import_is_cheap("mmadapt_clip_adapter.plugin")
    assert_import_is_cheap("mmadapt_clip_adapter.cli")


def test_the_params_command_counts_what_the_adapter_trains(plugin_manager, tiny_backbone, tiny_task, capsys):
    trainable = ClipAdapter(ClipAdapterConfig(), tiny_backbone, tiny_task).parameter_counts()["trainable"]
    assert adapt_command(["clip-adapter", "params", "--width", str(tiny_backbone.embed_dim)]) == 0
    assert f"{trainable:,} trainable parameters" in capsys.readouterr().out


def test_the_adapter_keeps_the_contract(tiny_backbone, tiny_task, tiny_batch):
    assert_adapter_contract(ClipAdapter(ClipAdapterConfig(), tiny_backbone, tiny_task), tiny_batch)


def test_alpha_zero_is_zero_shot_clip(plugin_manager, tiny_backbone, tiny_task, tiny_batch):
    zeroshot = plugin_manager.registry.get("adapter", "zeroshot")
    expected = zeroshot.build(zeroshot.config(), tiny_backbone, tiny_task)(tiny_batch)["logits"]
    adapter = ClipAdapter(ClipAdapterConfig(alpha=0.0), tiny_backbone, tiny_task)
    torch.testing.assert_close(adapter(tiny_batch)["logits"], expected)


def test_training_fits_a_batch(tiny_backbone, tiny_task, tiny_batch):
    adapter = ClipAdapter(ClipAdapterConfig(alpha=0.5), tiny_backbone, tiny_task)
    losses = train_steps(adapter, tiny_batch, steps=30, lr=0.01)
    assert losses[-1] < 0.75 * losses[0], losses


def test_the_example_recipe_runs_on_tiny_components(tiny_plugin, tmp_path):
    summary = run_recipe(tiny_recipe_from(RECIPE, train={"epochs": 2}), tmp_path)
    assert summary["steps"] > 0
    assert summary["params"]["trainable"] > 0
    assert set(summary["metrics"]) == {"initial/test/accuracy", "test/accuracy"}
