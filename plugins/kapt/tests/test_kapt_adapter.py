"""The kapt adapter: init identities, reductions to CLIP and CoOp, the head, novel classes, gradients, cost."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from mmadapt import PromptLearner, prompt_name, token_counts
from mmadapt.testing import assert_adapter_contract, assert_kg_regularizer_contract, train_steps
from mmadapt_kapt.discrete import discrete_prompts, render


def _encode(backbone, texts):
    with torch.no_grad():
        return F.normalize(backbone.encode_text(backbone.text.tokenize(texts)).float(), dim=-1)


def _clip_image(backbone, batch):
    with torch.no_grad():
        return F.normalize(backbone.encode_image(batch["image"]).float(), dim=-1)


def test_at_init_the_bias_is_zero_and_the_continuous_prompts_are_the_handwritten_ones(make_kapt, tiny_backbone):
    adapter = make_kapt()
    assert torch.equal(adapter.class_bias(), torch.zeros(4, tiny_backbone.text.width))
    expected = _encode(tiny_backbone, [f"a photo of a {c}." for c in adapter.task.classnames])
    torch.testing.assert_close(adapter.text_features(), expected, atol=1e-5, rtol=0)


def test_zero_query_pools_the_mean_and_alpha_zero_gives_clips_image_feature(make_kapt, tiny_backbone, tiny_batch):
    adapter = make_kapt(alpha=0.0)
    patches = torch.randn(3, 5, tiny_backbone.image.width)
    torch.testing.assert_close(adapter.head.pool(patches), patches.mean(dim=1))
    with torch.no_grad():
        adapter.head.query.normal_()
    torch.testing.assert_close(adapter.image_feature(tiny_batch), _clip_image(tiny_backbone, tiny_batch),
                               atol=1e-5, rtol=0)


def test_beta_one_alpha_zero_is_zero_shot_with_the_knowledge_prompts(make_kapt, tiny_backbone, tiny_batch):
    adapter = make_kapt(beta=1.0, alpha=0.0).eval()
    prompts = adapter.discrete_texts
    assert prompts[0].startswith("a photo of a red, which has ") and prompts[0].count(",") == 2
    expected = tiny_backbone.logit_scale * _clip_image(tiny_backbone, tiny_batch) @ _encode(tiny_backbone, prompts).t()
    torch.testing.assert_close(adapter(tiny_batch)["logits"], expected, atol=1e-4, rtol=1e-5)


def test_beta_zero_alpha_zero_zero_bias_is_coop(make_kapt, tiny_backbone, tiny_batch):
    adapter = make_kapt(beta=0.0, alpha=0.0).eval()
    with torch.no_grad():
        adapter.prompt.ctx.normal_(std=0.02)
    coop = PromptLearner(tiny_backbone, adapter.task.classnames, adapter.prompt.ctx.detach().clone())
    text = coop.encode(tiny_backbone, coop())
    expected = tiny_backbone.logit_scale * _clip_image(tiny_backbone, tiny_batch) @ text.t()
    torch.testing.assert_close(adapter(tiny_batch)["logits"], expected, atol=1e-4, rtol=1e-5)


def test_prompts_fit_the_context_by_dropping_trailing_keywords(tiny_backbone):
    words = [f"keyword{i}" for i in range(40)]
    names = ["sweet_pepper", "fox"]
    prompts = discrete_prompts(tiny_backbone, names, {n: words for n in names}, 40,
                               "a photo of a {class}, which has {keywords}.", "a photo of a {class}.")
    counts = token_counts(tiny_backbone, prompts) + 2
    assert int(counts.max()) < tiny_backbone.text.context_length  # uncut: the end token is the text's own
    for name, prompt in zip(names, prompts):
        kept = prompt.removeprefix(f"a photo of a {prompt_name(name)}, which has ").removesuffix(".").split(", ")
        assert 0 < len(kept) < 40 and kept == words[: len(kept)]  # a prefix: the trailing ones went first
        longer = render("a photo of a {class}, which has {keywords}.", "", name, words[: len(kept) + 1])
        assert int(token_counts(tiny_backbone, [longer])[0]) + 2 >= tiny_backbone.text.context_length  # would be cut
    assert discrete_prompts(tiny_backbone, ["fox"], {}, 2, "{class} has {keywords}.", "a photo of a {class}.") == [
        "a photo of a fox."]


def test_novel_classes_get_class_specific_prompts_from_their_own_descriptions(make_kapt, described_task, tiny_batch):
    explicit = {name: ["shade", "tone"] for name in described_task.classnames}  # no IDF coupling between classes
    task = replace(described_task, keywords=explicit)
    adapter = make_kapt(task=task).eval()
    # Both layers drawn from a fixed generator: the bias then depends on the description whatever the
    # global random state (with only the last layer drawn, every hidden unit can sit below the ReLU).
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in (adapter.bias[0], adapter.bias[2]):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=generator))
    before_text, before_logits = adapter.text_features(), adapter(tiny_batch)["logits"]
    edited = dict(task.knowledge, blue="a cold, pale colour of ice and winter mornings")
    adapter.set_task(replace(task, knowledge=edited))
    after_text, after_logits = adapter.text_features(), adapter(tiny_batch)["logits"]
    changed = (after_text - before_text).abs().amax(dim=1) > 1e-6
    assert changed.tolist() == [False, False, True, False]
    columns = (after_logits - before_logits).abs().amax(dim=0) > 1e-5
    assert columns.tolist() == [False, False, True, False]
    # Classes never trained on: a new class list is served from its descriptions alone.
    novel = replace(task, classnames=["purple", "grey"], keywords=None,
                    knowledge={"purple": "a colour of violets and plums", "grey": "a colour of ash and rain clouds"})
    adapter.set_task(novel)
    assert adapter(tiny_batch)["logits"].shape == (16, 2)
    assert not torch.allclose(adapter.class_bias()[0], adapter.class_bias()[1])


def test_gradients_reach_every_trainable_tensor_and_nothing_frozen(make_kapt, tiny_batch):
    adapter = make_kapt().train()
    trainable = {name: p for name, p in adapter.named_parameters() if p.requires_grad}
    assert sorted(trainable) == ["bias.0.bias", "bias.0.weight", "bias.2.bias", "bias.2.weight",
                                 "head.projection", "head.query", "prompt.ctx"]
    assert not adapter.knowledge_features.requires_grad and not adapter.discrete_features.requires_grad
    optimizer = torch.optim.SGD(trainable.values(), lr=0.5)
    seen = {name: False for name in trainable}
    for step in range(2):
        optimizer.zero_grad()
        F.cross_entropy(adapter(tiny_batch)["logits"], tiny_batch["label"]).backward()
        for name, p in trainable.items():
            nonzero = p.grad is not None and bool(p.grad.abs().sum() > 0)
            if step == 0 and name.startswith("bias.0"):
                assert not nonzero  # W2 starts at zero, so nothing flows back to W1, b1 on the first step
            seen[name] |= nonzero
        optimizer.step()
    assert all(seen.values()), seen
    assert all(p.grad is None for p in adapter.backbone.parameters())


def test_one_text_encoder_batch_of_all_classes_per_step(make_kapt, tiny_backbone, tiny_batch, monkeypatch):
    adapter = make_kapt().train()
    calls = []
    original = tiny_backbone.text.encode_embeddings

    def counting(prompts, eot):
        calls.append(prompts.shape[0])
        return original(prompts, eot)

    monkeypatch.setattr(tiny_backbone.text, "encode_embeddings", counting)
    for size in (2, 16):
        calls.clear()
        adapter({"image": tiny_batch["image"][:size]})
        assert calls == [4]


def test_parts_switch_off_for_ablations(make_kapt, tiny_batch):
    full = make_kapt().parameter_counts()["trainable"]
    assert make_kapt(head=False).frozen_image_features
    for options in ({"head": False}, {"knowledge_bias": False}, {"head_proj": "frozen"}):
        assert make_kapt(**options).parameter_counts()["trainable"] < full
    adapter = make_kapt(discrete=False, knowledge_bias=False, head=False).eval()
    assert adapter.parameter_groups().keys() == {"prompt"}
    assert adapter(tiny_batch)["logits"].shape == (16, 4)


def test_the_adapter_keeps_the_contract_learns_and_serves_kg_regularizer(make_kapt, tiny_batch):
    assert_adapter_contract(make_kapt(), tiny_batch)
    assert_kg_regularizer_contract(make_kapt(discrete=False), tiny_batch)
    losses = train_steps(make_kapt(), tiny_batch, steps=15, lr=1e-2)
    assert losses[-1] < 0.7 * losses[0]


def test_a_task_without_descriptions_is_refused(make_kapt, tiny_task):
    from mmadapt import UserError

    with pytest.raises(UserError, match="red, green, blue, yellow.*data.knowledge_file"):
        make_kapt(task=tiny_task)


@pytest.mark.parametrize("kg_target", ["templates", "discrete"])
def test_the_regulariser_is_zero_on_its_targets_and_two_lambda_on_opposite_ones(
        make_kapt, tiny_batch, plugin_manager, kg_target):
    adapter = make_kapt(kg_target=kg_target).train()
    objective = plugin_manager.registry.get("objective", "kg-regularizer")
    loss_fn = objective.build(objective.config(weight=8.0), adapter)
    outputs = adapter(tiny_batch)
    targets = outputs["handwritten_text_features"]
    zero_shot = _encode(adapter.backbone, [f"a photo of a {c}." for c in adapter.task.classnames])
    torch.testing.assert_close(targets, adapter.discrete_features if kg_target == "discrete" else zero_shot,
                               atol=1e-5, rtol=0)
    cross_entropy = F.cross_entropy(outputs["logits"], tiny_batch["label"])
    for text, distance in ((targets, 0.0), (-targets, 2.0)):
        loss, terms = loss_fn(dict(outputs, text_features=text), tiny_batch)
        assert terms["kg_distance"].item() == pytest.approx(distance, abs=1e-5)
        assert loss.item() == pytest.approx(cross_entropy.item() + 8.0 * distance, rel=1e-5)
