"""MMRL's adapter: tokens only in the chosen blocks, CLIP without them, decoupled inference, exact text passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt import UserError, base_new_bundles, zeroshot_classifier
from mmadapt.testing import assert_adapter_contract, make_batch, tiny_bundle
from mmrl_testing import IMAGE_DEPTH, TEXT_DEPTH, build_mmrl, deeper_tiny_backbone, randomise

#: The upper half of each tower of the deeper tiny CLIP (as the ShapesWorld recipe does on shapes-clip).
RANGES = {"layers": [3, IMAGE_DEPTH], "text_layers": [2, TEXT_DEPTH]}


@pytest.fixture
def backbone():
    return deeper_tiny_backbone()


@pytest.fixture
def halves():
    """Base and new classes of 6 tiny colours (3 + 3)."""
    return base_new_bundles(tiny_bundle(n_classes=6))


@pytest.fixture
def adapter(backbone, halves):
    adapter = build_mmrl(backbone, halves[0].task, **RANGES)
    randomise(adapter)
    return adapter


def batch_of(bundle, backbone, split="train", size=6):
    return make_batch(bundle.split(split), backbone, size=size)


def test_the_adapter_contract_holds(backbone, halves):
    adapter = build_mmrl(backbone, halves[0].task, **RANGES)
    assert_adapter_contract(adapter, batch_of(halves[0], backbone))


def block_inputs(resblocks, batch_first):
    """Forward pre-hooks recording each block's input ``(B, T, width)``; returns (inputs, handles)."""
    inputs, handles = {}, []
    for index, block in enumerate(resblocks):
        def record(module, args, index=index):
            x = args[0] if batch_first else args[0].transpose(0, 1)
            inputs[index] = x.detach().clone()
        handles.append(block.register_forward_pre_hook(record))
    return inputs, handles


def test_image_tokens_enter_only_the_configured_blocks_after_the_class_token(adapter, backbone, halves):
    transformer = backbone.model.visual.transformer
    pixels = batch_of(halves[0], backbone)["image"]
    plain, handles = block_inputs(transformer.resblocks, transformer.batch_first)
    with torch.no_grad():
        backbone.encode_image(pixels)
    for handle in handles:
        handle.remove()
    seen, handles = block_inputs(transformer.resblocks, transformer.batch_first)
    with torch.no_grad():
        adapter.encode_image(pixels, adapter.image_insertions())
        expected = adapter.image_insertions()
    for handle in handles:
        handle.remove()
    k = adapter.config.n_tokens
    assert sorted(expected) == [2, 3]  # blocks 3 and 4, counted from 1
    for index in (0, 1):  # below the range: CLIP's own stream, bit for bit
        assert torch.equal(seen[index], plain[index])
    for index in (2, 3):  # in the range: K more positions right after the class token, this block's tokens
        assert seen[index].shape[1] == plain[index].shape[1] + k
        assert torch.equal(seen[index][:, 1 : 1 + k], expected[index].expand(len(pixels), -1, -1))
    # Block 3's stream around the tokens is still CLIP's (nothing was inserted before it).
    assert torch.equal(torch.cat([seen[2][:, :1], seen[2][:, 1 + k :]], dim=1), plain[2])
    # Different per block: each block of the range has its own projection.
    assert not torch.equal(expected[2], expected[3])


def test_text_tokens_enter_only_the_configured_blocks_after_the_start_token(adapter, backbone):
    adapter.share_prefix = False  # every prompt through the blocks themselves, where the hooks see them
    transformer = backbone.model.transformer
    plain, handles = block_inputs(transformer.resblocks, transformer.batch_first)
    with torch.no_grad():
        adapter.encode_text({})
    for handle in handles:
        handle.remove()
    seen, handles = block_inputs(transformer.resblocks, transformer.batch_first)
    with torch.no_grad():
        adapter.encode_text(adapter.text_insertions())
        expected = adapter.text_insertions()
    for handle in handles:
        handle.remove()
    k = adapter.config.n_tokens
    assert sorted(expected) == [1, 2]
    assert torch.equal(seen[0], plain[0])
    for index in (1, 2):
        assert seen[index].shape[1] == plain[index].shape[1] + k
        assert torch.equal(seen[index][:, 1 : 1 + k], expected[index].expand(seen[index].shape[0], -1, -1))
    assert torch.equal(torch.cat([seen[1][:, :1], seen[1][:, 1 + k :]], dim=1), plain[1])


def test_without_tokens_the_class_token_path_is_zero_shot_clip(adapter, backbone, halves):
    pixels = batch_of(halves[0], backbone)["image"]
    with torch.no_grad():
        clip_image = F.normalize(backbone.encode_image(pixels), dim=-1)
        clip_text = zeroshot_classifier(backbone, halves[0].task.classnames, [adapter.template])
        image = adapter.encode_image(pixels, {})
        texts = []
        for share in (True, False):
            adapter.share_prefix = share
            texts.append(adapter.encode_text({}))
        with_tokens = adapter.encode_image(pixels, adapter.image_insertions())["class"]
    assert "representation" not in image
    torch.testing.assert_close(image["class"], clip_image, atol=1e-6, rtol=0)
    for text in texts:
        torch.testing.assert_close(text, clip_text, atol=1e-6, rtol=0)
    scale = backbone.logit_scale
    torch.testing.assert_close(scale * image["class"] @ texts[0].t(), scale * clip_image @ clip_text.t(),
                               atol=1e-6 * float(scale), rtol=0)
    # The comparison can fail: with the (randomised) tokens the class token is no longer CLIP's.
    assert (with_tokens - clip_image).abs().max() > 1e-3


@pytest.mark.parametrize("first", [1, 3])
def test_the_frozen_features_reuse_the_blocks_below_the_range_and_equal_clip(backbone, halves, first):
    adapter = build_mmrl(backbone, halves[0].task, layers=[first, IMAGE_DEPTH], text_layers=[2, TEXT_DEPTH])
    randomise(adapter)
    batch = batch_of(halves[0], backbone)
    adapter.report_frozen = True
    adapter.train()
    outputs = adapter(batch)
    with torch.no_grad():
        clip_image = F.normalize(backbone.encode_image(batch["image"]), dim=-1)
    clip_text = zeroshot_classifier(backbone, halves[0].task.classnames, [adapter.template])
    torch.testing.assert_close(outputs["frozen_image_features"], clip_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs["frozen_text_features"], clip_text, atol=1e-6, rtol=0)
    assert not outputs["frozen_image_features"].requires_grad
    adapter.report_frozen = False
    assert "frozen_image_features" not in adapter(batch)


def test_novel_class_logits_do_not_depend_on_the_representation_projection(adapter, backbone, halves):
    base, new = halves
    adapter.eval()
    logits = {}
    for step in ("before", "after"):
        for name, bundle in (("base", base), ("new", new)):
            adapter.set_task(bundle.task)
            with torch.no_grad():
                logits[step, name] = adapter(batch_of(bundle, backbone, "test"))
        with torch.no_grad():
            adapter.representation_projection.add_(torch.randn_like(adapter.representation_projection))
    assert torch.equal(logits["before", "new"]["logits"], logits["after", "new"]["logits"])
    assert torch.equal(logits["before", "new"]["logits"], logits["before", "new"]["class_logits"])
    # The trained (base) classes fuse both logits, so the same change moves them.
    base_outputs = logits["before", "base"]
    weight = adapter.config.fusion_weight
    fused = weight * base_outputs["class_logits"] + (1 - weight) * base_outputs["representation_logits"]
    torch.testing.assert_close(base_outputs["logits"], fused, atol=1e-6, rtol=0)
    assert (logits["before", "base"]["logits"] - logits["after", "base"]["logits"]).abs().max() > 1e-3


def test_a_checkpoint_carries_the_trained_classes_to_an_adapter_built_for_other_data(adapter, backbone, halves):
    base, new = halves
    saved = adapter.trainable_state_dict()
    elsewhere = build_mmrl(backbone, new.task, **RANGES)  # what `adapt eval` on another dataset builds
    assert elsewhere.on_trained_classes
    elsewhere.load_trainable_state_dict(saved)
    assert elsewhere.trained_classes == tuple(base.task.classnames) and not elsewhere.on_trained_classes
    elsewhere.eval()
    with torch.no_grad():
        outputs = elsewhere(batch_of(new, backbone, "test"))
    assert torch.equal(outputs["logits"], outputs["class_logits"])


def test_the_shared_prefix_text_pass_is_exact_in_outputs_and_gradients(adapter, backbone, halves):
    batch = batch_of(halves[0], backbone)
    tower = backbone.text
    calls = []
    original = tower.run_shared_prefix

    def counted(*args, **kwargs):
        calls.append(kwargs.get("insert_at"))
        return original(*args, **kwargs)

    results = []
    tower.run_shared_prefix = counted
    try:
        for share in (True, False):
            adapter.share_prefix = share
            adapter.train()
            adapter.zero_grad(set_to_none=True)
            outputs = adapter(batch)
            F.cross_entropy(outputs["logits"], batch["label"]).backward()
            grads = {name: p.grad.clone() for name, p in adapter.named_parameters() if p.grad is not None}
            results.append((outputs["text_features"].detach(), grads))
    finally:
        del tower.run_shared_prefix
    assert calls == [1]  # one shared pass, the tokens right after the start token
    (shared, shared_grads), (whole, whole_grads) = results
    torch.testing.assert_close(shared, whole, atol=1e-5, rtol=0)
    assert shared_grads.keys() == whole_grads.keys() and any(name.startswith("to_text") for name in whole_grads)
    for name in whole_grads:
        scale = max(1.0, float(whole_grads[name].abs().max()))
        torch.testing.assert_close(shared_grads[name], whole_grads[name], atol=1e-5 * scale, rtol=0)


@pytest.mark.parametrize(("template", "shared"), [("a photo of a {}.", 5), ("{} texture.", 1),
                                                  ("a photo of {}, a type of food.", 4)])
def test_the_shared_positions_are_the_start_token_and_the_words_before_the_class_name(backbone, halves, template,
                                                                                       shared):
    adapter = build_mmrl(backbone, halves[0].task, template=template, **RANGES)
    assert adapter.shared_positions == shared


def test_a_layer_range_beyond_the_image_tower_names_the_key_and_the_valid_range(backbone, halves):
    with pytest.raises(UserError, match=r"adapter\.layers=\[3, 5\] reaches beyond .*4 blocks; "
                                        r"choose 1 <= first <= last <= 4"):
        build_mmrl(backbone, halves[0].task, layers=[3, 5], text_layers=[1, 3])


def test_a_range_that_fits_the_image_tower_only_points_at_text_layers(backbone, halves):
    with pytest.raises(UserError, match=r"adapter\.layers=\[2, 4\] reaches beyond .*text tower's 3 blocks.*"
                                        r"adapter\.text_layers"):
        build_mmrl(backbone, halves[0].task, layers=[2, 4])
    with pytest.raises(UserError, match=r"adapter\.text_layers=\[1, 4\] .*choose 1 <= first <= last <= 3$"):
        build_mmrl(backbone, halves[0].task, layers=[2, 4], text_layers=[1, 4])


@pytest.mark.parametrize(("options", "message"), [
    ({"layers": [0, 2]}, r"adapter\.layers is \[first, last\].*counted from 1"),
    ({"layers": [3, 2]}, r"adapter\.layers is \[first, last\]"),
    ({"layers": [1, 2, 3]}, r"adapter\.layers is \[first, last\]"),
    ({"text_layers": [2]}, r"adapter\.text_layers is \[first, last\]"),
    ({"template": "a photo of a"}, r"adapter\.template must hold '\{\}'"),
    ({"fusion_weight": 1.5}, r"adapter\.fusion_weight must lie in \[0, 1\]"),
    ({"n_tokens": 0}, r"adapter\.n_tokens and adapter\.dimension must be at least 1"),
])
def test_bad_options_name_their_key(plugin_manager, options, message):
    component = plugin_manager.registry.get("adapter", "mmrl")
    with pytest.raises(ValueError, match=message):
        component.config(**options)
