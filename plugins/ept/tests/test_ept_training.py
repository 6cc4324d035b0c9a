"""Both adapters against the engine's contract, learning on the tiny colour data, the kg-regularizer
contract for ``ept``, and a recipe run whose summary carries the parameter breakdown."""

from __future__ import annotations

import pytest
from mmadapt.testing import (
    assert_adapter_contract,
    assert_kg_regularizer_contract,
    run_recipe,
    tiny_recipe,
    train_steps,
)

SETTINGS = [{}, {"fusion": False, "projection": False}, {"rank": 0, "projection": False}]


def build(plugin_manager, name, backbone, task, **options):
    component = plugin_manager.registry.get("adapter", name)
    return component.build(component.config(**options), backbone, task)


@pytest.mark.parametrize("name", ["ept", "ept-visual"])
@pytest.mark.parametrize("options", SETTINGS)
def test_adapter_contract(plugin_manager, tiny_backbone, tiny_task, tiny_batch, name, options):
    assert_adapter_contract(build(plugin_manager, name, tiny_backbone, tiny_task, **options), tiny_batch)


@pytest.mark.parametrize("name", ["ept", "ept-visual"])
def test_training_lowers_the_loss(plugin_manager, tiny_backbone, tiny_task, tiny_batch, name):
    import torch

    torch.manual_seed(0)
    adapter = build(plugin_manager, name, tiny_backbone, tiny_task)
    losses = train_steps(adapter, tiny_batch, steps=30, lr=0.01)
    assert losses[-1] < 0.5 * losses[0]
    assert adapter.parts.offset.B.abs().sum() > 0 and adapter.parts.projection.V.abs().sum() > 0


def test_kg_regularizer_contract(plugin_manager, backbone, make_adapter):
    import torch

    adapter = make_adapter("ept", backbone, init="a photo of a")  # the task's template: "a photo of a {}."
    batch = {"image": torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
             "label": torch.tensor([0, 1, 2])}
    assert_kg_regularizer_contract(adapter, batch)


def test_recipe_summary_reports_the_breakdown(plugin_manager, tiny_plugin, tmp_path):
    recipe = tiny_recipe(
        adapter={"name": "ept", "init": "a photo of a", "truncate": True},
        protocol={"name": "base2novel"},
        train={"epochs": 2, "param_groups": {"low_rank": {"lr": 0.01}}},
    )
    summary = run_recipe(recipe, tmp_path)
    params = summary["params"]
    assert params["decomposed_budget"] == params["prompt"] + params["low_rank"]
    assert params["trainable"] == params["decomposed_budget"] + params["ept_extras"] and params["fusion"] == 0
