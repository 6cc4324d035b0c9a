"""LoRA through HF PEFT: the loss falls and only LoRA weights change."""

from __future__ import annotations

import json

import pytest
import torch
from mmadapt.testing import run_recipe, tiny_recipe


@pytest.mark.parametrize("tower", ["vision", "text"])
def test_lora_trains_only_lora_weights(tiny_plugin, plugin_manager, tmp_path, tower):
    from mmadapt.data import Task
    from mmadapt.testing_models import tiny_openclip_backbone

    backbone = tiny_openclip_backbone()
    before = {name: p.detach().clone() for name, p in backbone.named_parameters()}
    lora = plugin_manager.registry.get("adapter", "lora")
    adapter = lora.build(lora.config(tower=tower, r=2), backbone, Task(["red", "green", "blue", "yellow"]))
    counts = adapter.parameter_counts()
    lora_params = {n: p for n, p in adapter.named_parameters() if p.requires_grad}
    assert lora_params and all("lora_" in n for n in lora_params)
    assert counts["trainable"] == sum(p.numel() for p in lora_params.values())
    assert counts["total"] == sum(before[n].numel() for n in before) + counts["trainable"]

    optimizer = torch.optim.AdamW(lora_params.values(), lr=0.05)
    images = torch.rand(8, 3, 32, 32)
    labels = torch.arange(8) % 4
    losses = []
    adapter.train()
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(adapter({"image": images, "label": labels})["logits"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7
    for name, param in backbone.named_parameters():
        if "lora_" not in name:
            original = name.replace(".base_layer", "")
            assert torch.equal(param, before[original]), f"frozen tensor {name} changed"


def test_lora_recipe_runs(tiny_plugin, tmp_path):
    recipe = tiny_recipe(
        adapter={"name": "lora", "r": 2},
        protocol={"name": "standard"},
        train={"epochs": 3, "optimizer": "adamw", "lr": 0.01},
    )
    summary = run_recipe(recipe, tmp_path)
    assert summary["params"]["trainable"] > 0
    checkpoint = next((tmp_path / "run" / "checkpoints").iterdir())
    from safetensors.torch import load_file

    saved = load_file(str(checkpoint / "adapter.safetensors"))
    assert saved and all("lora_" in name for name in saved)
    assert sum(t.numel() for t in saved.values()) == summary["params"]["trainable"]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == summary["steps"] > 0
