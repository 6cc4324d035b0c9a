"""MMRL's objective: each term against a hand computation, where its gradients go, what it refuses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt import UserError, zeroshot_classifier
from mmadapt.testing import make_batch, tiny_bundle
from mmrl_testing import build_mmrl, deeper_tiny_backbone, randomise

RANGES = {"layers": [3, 4], "text_layers": [2, 3]}


def build_objective(adapter, **options):
    from mmadapt import get_plugin_manager

    component = get_plugin_manager().registry.get("objective", "mmrl")
    return component.build(component.config(**options), adapter)


@pytest.fixture
def setup():
    backbone = deeper_tiny_backbone()
    bundle = tiny_bundle(n_classes=4)
    adapter = build_mmrl(backbone, bundle.task, **RANGES)
    randomise(adapter)
    return backbone, bundle, adapter, make_batch(bundle.split("train"), backbone, size=8)


def cross_entropy_by_hand(logits, labels):
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probabilities = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    return -log_probabilities[torch.arange(len(labels)), labels].mean()


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def test_every_term_equals_a_hand_computation(setup):
    backbone, bundle, adapter, batch = setup
    objective = build_objective(adapter, class_weight=0.6, weight=2.5)
    adapter.train()
    outputs = adapter(batch)
    loss, terms = objective(outputs, batch)

    with torch.no_grad():
        pixels, labels = batch["image"], batch["label"]
        image_tower, text_tower = backbone.image, backbone.text
        run = image_tower.run(image_tower.embed(pixels), insert=adapter.image_insertions(), insert_at=1)
        image = unit(image_tower.head(run.tokens))
        representation = unit(image_tower.final_norm(run.inserted).mean(dim=1) @ adapter.representation_projection)
        ids = text_tower.tokenize([f"a photo of a {name} thing." for name in bundle.task.classnames])
        eot = text_tower.eot_index(ids)
        text_run = text_tower.run(text_tower.embed(text_tower.token_embedding(ids)),
                                  insert=adapter.text_insertions(), insert_at=1)
        text = unit(text_tower.head(text_run.tokens, eot))
        clip_image = unit(backbone.encode_image(pixels))
        clip_text = zeroshot_classifier(backbone, bundle.task.classnames, ["a photo of a {} thing."])
        scale = backbone.logit_scale
        class_ce = cross_entropy_by_hand(scale * image @ text.t(), labels)
        representation_ce = cross_entropy_by_hand(scale * representation @ text.t(), labels)
        image_distance = 1 - (image * clip_image).sum(dim=-1).mean()
        text_distance = 1 - (text * clip_text).sum(dim=-1).mean()

    expected = {"class_cross_entropy": class_ce, "representation_cross_entropy": representation_ce,
                "image_distance": image_distance, "text_distance": text_distance}
    assert terms.keys() == expected.keys()
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), abs=1e-5), name
    assert min(image_distance.item(), text_distance.item()) > 1e-3  # the randomised tokens moved both towers
    by_hand = 0.6 * class_ce + 0.4 * representation_ce + 2.5 * (image_distance + text_distance)
    assert loss.item() == pytest.approx(by_hand.item(), abs=1e-5)


def test_the_regulariser_trains_the_tokens_and_never_the_representation_projection(setup):
    _, _, adapter, batch = setup
    objective = build_objective(adapter)
    adapter.train()
    _, terms = objective(adapter(batch), batch)
    (terms["image_distance"] + terms["text_distance"]).backward()
    assert adapter.representation_projection.grad is None
    assert adapter.tokens.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in adapter.to_image.parameters())
    assert all(p.grad.abs().sum() > 0 for p in adapter.to_text.parameters())
    adapter.zero_grad(set_to_none=True)
    _, terms = objective(adapter(batch), batch)
    terms["representation_cross_entropy"].backward()
    assert adapter.representation_projection.grad.abs().sum() > 0


def test_the_objective_asks_for_the_frozen_features_and_refuses_other_adapters(setup, tiny_backbone, tiny_task):
    _, _, adapter, _ = setup
    assert adapter.report_frozen is False
    build_objective(adapter)
    assert adapter.report_frozen is True
    from mmadapt import get_plugin_manager

    zeroshot = get_plugin_manager().registry.get("adapter", "zeroshot")
    other = zeroshot.build(zeroshot.config(), tiny_backbone, tiny_task)
    with pytest.raises(UserError, match="objective mmrl needs the mmrl adapter"):
        build_objective(other)


@pytest.mark.parametrize(("options", "message"), [
    ({"class_weight": -0.1}, r"objective\.class_weight must lie in \[0, 1\]"),
    ({"weight": -1.0}, r"objective\.weight must be non-negative"),
])
def test_bad_options_name_their_key(plugin_manager, options, message):
    with pytest.raises(ValueError, match=message):
        plugin_manager.registry.get("objective", "mmrl").config(**options)


def test_with_class_weight_one_and_no_regulariser_the_loss_is_the_class_token_cross_entropy(setup):
    _, _, adapter, batch = setup
    objective = build_objective(adapter, class_weight=1.0, weight=0.0)
    adapter.train()
    outputs = adapter(batch)
    loss, _ = objective(outputs, batch)
    torch.testing.assert_close(loss, F.cross_entropy(outputs["class_logits"], batch["label"]), atol=1e-6, rtol=0)
