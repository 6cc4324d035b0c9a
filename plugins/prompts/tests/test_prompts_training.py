"""Training behaviour: isolation, learning, Dassl's schedule, KgCoOp's objective and base-to-novel runs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from mmadapt.testing import assert_kg_regularizer_contract, run_recipe, tiny_recipe


def logged(run_dir, key: str) -> list[float]:
    lines = (run_dir / "run" / "metrics.jsonl").read_text().splitlines()
    return [entry[key] for entry in map(json.loads, lines) if key in entry]


def snapshot(adapter) -> dict[str, torch.Tensor]:
    """Every parameter (backbone included) and every buffer, persistent or not."""
    tensors = {**dict(adapter.named_parameters()), **dict(adapter.named_buffers())}
    return {name: tensor.detach().clone() for name, tensor in tensors.items()}


@pytest.mark.parametrize(("name", "options", "trained"), [
    ("coop", {"n_ctx": 4}, {"prompt.ctx"}),
    ("coop", {"n_ctx": 2, "csc": True, "class_token_position": "middle"}, {"prompt.ctx"}),
    ("cocoop", {}, {"prompt.ctx", "meta_net.linear1.weight", "meta_net.linear1.bias", "meta_net.linear2.weight",
                    "meta_net.linear2.bias"}),
    ("latent-prompt", {}, {"class_vectors"}),
])
def test_one_step_changes_only_the_adapters_parameters(backbone, make_adapter, name, options, trained):
    torch.manual_seed(0)
    adapter = make_adapter(name, backbone, **options).train()
    before = snapshot(adapter)
    groups = adapter.parameter_groups()
    optimizer = torch.optim.SGD([p for params in groups.values() for p in params], lr=0.1, momentum=0.9,
                                weight_decay=5e-4)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    F.cross_entropy(adapter({"image": images})["logits"], torch.tensor([0, 1, 2, 3])).backward()
    optimizer.step()
    after = snapshot(adapter)
    assert after.keys() == before.keys()
    # Every backbone weight, every buffer (frozen prompt rows included) is bit-identical.
    assert {k for k in before if not torch.equal(before[k], after[k])} == trained


def test_coop_learns_on_tiny_data(tiny_plugin, tmp_path):
    # The tiny model's text tower is random, so the shared context needs Adam's step sizes to move fast.
    recipe = tiny_recipe(adapter={"name": "coop", "n_ctx": 4}, protocol={"name": "standard"},
                         train={"epochs": 8, "optimizer": "adamw", "lr": 0.01})
    summary = run_recipe(recipe, tmp_path)
    losses = logged(tmp_path, "loss")
    assert len(losses) == 8 * 4
    assert sum(losses[-4:]) < 0.85 * sum(losses[:4])
    assert summary["metrics"]["test/accuracy"] >= 50.0  # 4 classes: chance is 25


def test_dassl_schedule_trace_on_the_context(tiny_plugin, tmp_path):
    recipe = tiny_recipe(adapter={"name": "coop", "n_ctx": 4}, protocol={"name": "standard"},
                         data={"train_per_class": 4}, train={"epochs": 5, "lr": 0.0035, "warmup_epochs": 1})
    run_recipe(recipe, tmp_path)
    trace = [float(f"{lr:.4g}") for lr in logged(tmp_path, "lr/prompt")]
    assert trace == [1e-5, 3.5e-3, 3.166e-3, 2.291e-3, 1.209e-3]


def test_kg_regularizer_is_cross_entropy_plus_the_distance_to_handwritten_prompts(backbone, make_adapter,
                                                                                plugin_manager):
    adapter = make_adapter("coop", backbone, init="a photo of a", templates=["a photo of a {}."])
    batch = {"image": torch.randn(3, 3, 32, 32), "label": torch.tensor([0, 1, 2])}
    assert_kg_regularizer_contract(adapter, batch)


def test_base2novel_kgcoop_run_starts_at_zero_shot(tiny_plugin, tmp_path):
    data = {"n_classes": 6, "shots": 8}
    zeroshot = run_recipe(tiny_recipe(data=data, adapter={"name": "zeroshot", "templates": ["a photo of a {}."]},
                                      protocol={"name": "base2novel"}), tmp_path / "zeroshot")
    coop = run_recipe(
        tiny_recipe(data=data, adapter={"name": "coop", "init": "a photo of a", "templates": ["a photo of a {}."]},
                    objective={"name": "kg-regularizer"},
                    protocol={"name": "base2novel", "evaluate_initial": True},
                    train={"epochs": 3, "optimizer": "adamw", "lr": 0.01}),
        tmp_path / "coop",
    )["metrics"]
    for split in ("base", "new", "hm"):
        assert coop[f"initial/{split}/accuracy"] == zeroshot["metrics"][f"{split}/accuracy"]
        assert f"{split}/accuracy" in coop
    # The context starts as the hand-written prompt itself: KgCoOp's pull is zero, then grows.
    distances = logged(tmp_path / "coop", "kg_distance")
    assert len(distances) == 3
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[-1] > 1e-6


def test_latent_prompt_falls_back_to_zero_shot_for_new_classes(tiny_plugin, tmp_path):
    data = {"n_classes": 6, "shots": 8}
    zeroshot = run_recipe(tiny_recipe(data=data, protocol={"name": "base2novel"}), tmp_path / "zeroshot")["metrics"]
    latent = run_recipe(tiny_recipe(data=data, adapter={"name": "latent-prompt"}, protocol={"name": "base2novel"},
                                    train={"epochs": 3, "lr": 0.5}), tmp_path / "latent")["metrics"]
    assert latent["new/accuracy"] == zeroshot["new/accuracy"]
    assert latent["base/accuracy"] > zeroshot["base/accuracy"]


def test_cocoop_runs_base2novel(tiny_plugin, tmp_path):
    summary = run_recipe(tiny_recipe(data={"n_classes": 4, "shots": 4}, adapter={"name": "cocoop"},
                                     protocol={"name": "base2novel"}, train={"epochs": 1, "batch_size": 4}), tmp_path)
    assert set(summary["metrics"]) == {"base/accuracy", "new/accuracy", "hm/accuracy"}
    assert summary["params"]["trainable"] == 4 * 64 + (32 * 2 + 2) + (2 * 64 + 64)


def kg_regularizer(plugin_manager, adapter):
    """The core's kg-regularizer objective (weight 8.0) for ``adapter``."""
    component = plugin_manager.registry.get("objective", "kg-regularizer")
    return component.build(component.config(), adapter)


@pytest.mark.parametrize("name", ["coop", "cocoop", "latent-prompt"])
def test_mixed_precision_step_with_kg(backbone, make_adapter, plugin_manager, name):
    # The engine's autocast (fp16 on CUDA; bf16 here) meets fp32 cached image features, half-precision
    # text features and an fp32 context or meta-net.
    adapter = make_adapter(name, backbone).train()
    objective = kg_regularizer(plugin_manager, adapter)
    with torch.no_grad():
        features = backbone.encode_image(torch.randn(4, 3, 32, 32)).float()
    batch = {"image_features": features, "label": torch.tensor([0, 1, 2, 3])}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = adapter(batch)
        loss, terms = objective(outputs, batch)
    loss.backward()
    assert torch.isfinite(loss) and terms["kg_distance"].dtype == torch.float32
    grads = [p.grad for p in adapter.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
