"""Every exact speed-up against the naive path (atol 1e-5): sequence cutting, one text pass per step,
one text pass per evaluation, cached frozen image features, CoCoOp's batched text pass."""

from __future__ import annotations

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mmadapt import hookimpl
from mmadapt.testing import run_recipe, tiny_recipe
from mmadapt_prompts.reference import ReferenceCoop
from safetensors.torch import load_file

ATOL = 1e-5


def pixels(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_cut_sequences_and_cached_features_match_the_reference_coop_step(backbone, make_adapter):
    torch.manual_seed(0)
    ours = make_adapter("coop", backbone, n_ctx=8).train()
    reference = ReferenceCoop(backbone, ours.task.classnames, ours.prompt.ctx).train()
    images, labels = pixels(4), torch.tensor([0, 1, 2, 4])
    assert ours.prompt().shape[1] < reference.prefix.shape[1] + 8 + reference.suffix.shape[1] == 77
    with torch.no_grad():
        cached = backbone.encode_image(images).float()
    logits = ours({"image_features": cached, "label": labels})["logits"]
    expected = reference(images)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    F.cross_entropy(logits, labels).backward()
    F.cross_entropy(expected, labels).backward()
    torch.testing.assert_close(ours.prompt.ctx.grad, reference.ctx.grad, atol=ATOL, rtol=1e-4)


def test_cached_image_features_equal_encoding_the_images(backbone, make_adapter):
    adapter = make_adapter("cocoop", backbone).eval()
    images = pixels(3)
    with torch.no_grad():
        cached = adapter({"image_features": backbone.encode_image(images).float()})["logits"]
        direct = adapter({"image": images})["logits"]
    torch.testing.assert_close(cached, direct, atol=ATOL, rtol=0)


def test_one_text_pass_per_step_equals_one_per_image(backbone, make_adapter):
    adapter = make_adapter("coop", backbone, init="a photo of a", class_token_position="middle").train()
    images = pixels(4)
    batched = adapter({"image": images})["logits"]
    per_image = torch.cat([adapter({"image": images[i : i + 1]})["logits"] for i in range(4)])
    torch.testing.assert_close(batched, per_image, atol=ATOL, rtol=0)


def count_text_passes(backbone, monkeypatch) -> list[int]:
    """Prompts per text-encoder call, whole (``encode_embeddings``) or with a shared prefix."""
    calls: list[int] = []
    whole, shared = backbone.text.encode_embeddings, backbone.text.encode_shared_prefix

    def counting(embeddings, eot_index):
        calls.append(embeddings.shape[0])
        return whole(embeddings, eot_index)

    def counting_shared(prefix, suffix, eot_index, **changes):
        calls.append(suffix.shape[0])
        return shared(prefix, suffix, eot_index, **changes)

    monkeypatch.setattr(backbone.text, "encode_embeddings", counting)
    monkeypatch.setattr(backbone.text, "encode_shared_prefix", counting_shared)
    return calls


def test_evaluation_runs_the_text_encoder_once_and_never_serves_stale_features(backbone, make_adapter, monkeypatch):
    torch.manual_seed(0)
    adapter = make_adapter("coop", backbone, n_ctx=4)
    calls = count_text_passes(backbone, monkeypatch)
    adapter.eval()
    with torch.no_grad():
        first, second = adapter({"image": pixels(2, 1)}), adapter({"image": pixels(3, 2)})
    assert len(calls) == 1
    with torch.no_grad():
        fresh = adapter.text_features()
    torch.testing.assert_close(first["text_features"], fresh, atol=0, rtol=0)
    torch.testing.assert_close(second["logits"], backbone.logit_scale * adapter.image_features(
        {"image": pixels(3, 2)}) @ fresh.t(), atol=ATOL, rtol=0)

    # New weights (a checkpoint) and a training step both invalidate the cache.
    state = {"prompt.ctx": torch.randn_like(adapter.prompt.ctx) * 0.02}
    adapter.load_trainable_state_dict(state)
    with torch.no_grad():
        after_load = adapter({"image": pixels(2, 1)})["text_features"]
    assert len(calls) == 3  # one for `fresh`, one after loading
    assert not torch.allclose(after_load, fresh)
    adapter.train()
    optimizer = torch.optim.SGD([adapter.prompt.ctx], lr=1.0)
    F.cross_entropy(adapter({"image": pixels(2, 1)})["logits"], torch.tensor([0, 1])).backward()
    optimizer.step()
    adapter.eval()
    with torch.no_grad():
        after_step = adapter({"image": pixels(2, 1)})["text_features"]
        torch.testing.assert_close(after_step, adapter.text_features(), atol=0, rtol=0)
    assert not torch.allclose(after_step, after_load)


def test_cocoop_batched_text_pass_equals_the_reference_loop_over_images(backbone, make_adapter, monkeypatch):
    torch.manual_seed(0)
    adapter = make_adapter("cocoop", backbone, class_token_position="front").train()
    images, labels = pixels(3), torch.tensor([0, 3, 1])
    calls = count_text_passes(backbone, monkeypatch)
    batched = adapter({"image": images})["logits"]
    assert calls == [3 * adapter.task.n_classes]  # one encoder call for B x n_classes prompts
    F.cross_entropy(batched, labels).backward()
    batched_grads = [p.grad.clone() for p in adapter.parameters() if p.requires_grad]
    adapter.zero_grad()

    # CoCoOp's CustomCLIP.forward: one text pass per image.
    image = adapter.image_features({"image": images})
    prompts = adapter.prompt(adapter.meta_net(image))
    looped = torch.stack([
        adapter.backbone.logit_scale * image[i] @ F.normalize(
            backbone.text.encode_embeddings(prompts[i], adapter.prompt.eot), dim=-1).t()
        for i in range(3)
    ])
    torch.testing.assert_close(batched, looped, atol=ATOL, rtol=0)
    F.cross_entropy(looped, labels).backward()
    for grad, param in zip(batched_grads, (p for p in adapter.parameters() if p.requires_grad)):
        torch.testing.assert_close(grad, param.grad, atol=ATOL, rtol=1e-4)


# -- the engine's frozen image feature cache ---------------------------------------------------------


@dataclass
class UncachedConfig:
    n_ctx: int | None = 4
    init: str | None = None
    csc: bool = False
    class_token_position: str = "end"
    templates: list[str] | None = None


def build_uncached(config, backbone, task):
    from mmadapt_prompts.coop import Coop

    class UncachedCoop(Coop):
        frozen_image_features = False  # the engine hands over images; the adapter encodes every step

    return UncachedCoop(config, backbone, task)


class UncachedPlugin:
    @hookimpl
    def register_adapters(self, register):
        register("coop-uncached", build_uncached, UncachedConfig, "coop encoding images every step (test)")


def test_training_on_cached_image_features_equals_encoding_every_step(tiny_plugin, register_plugin, tmp_path):
    register_plugin(UncachedPlugin(), "coop-uncached")
    results = {}
    for name in ("coop", "coop-uncached"):
        recipe = tiny_recipe(adapter={"name": name, "n_ctx": 4}, protocol={"name": "standard"},
                             train={"epochs": 2, "lr": 0.05})
        summary = run_recipe(recipe, tmp_path / name)
        lines = (tmp_path / name / "run" / "metrics.jsonl").read_text().splitlines()
        losses = [entry["loss"] for entry in map(json.loads, lines) if "loss" in entry]
        ctx = load_file(str(tmp_path / name / "run" / "checkpoints" / "train-epoch0002" / "adapter.safetensors"))
        results[name] = (summary["metrics"]["test/accuracy"], torch.tensor(losses), ctx["prompt.ctx"])
    (acc, losses, ctx), (acc_naive, losses_naive, ctx_naive) = results["coop"], results["coop-uncached"]
    assert len(losses) == 8
    torch.testing.assert_close(losses, losses_naive, atol=ATOL, rtol=0)
    torch.testing.assert_close(ctx, ctx_naive, atol=ATOL, rtol=0)
    assert acc == acc_naive
