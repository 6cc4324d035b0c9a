"""KAPT's head, image-feature blend and logits with non-zero parameters, against kapt.md written out here.

Every trainable tensor (ctx, the knowledge MLP, the head's query and projection) gets seeded random
values and alpha, beta lie strictly between 0 and 1, so every term acts. The expected values come
from the formulas of kapt.md ("Our specification") in plain torch on the raw open_clip model the tiny
backbone wraps and open_clip's tokenizer: CLIP's own ``encode_image``, the tokens its ``ln_post``
returns (read by a hook), and its ``encode_text`` with the context rows of the token embeddings
replaced by a hook. Nothing of the adapter's or the backbone's code computes an expected value.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from mmadapt import prompt_name
from mmadapt.testing_models import tiny_openclip_model
from open_clip import tokenize


def set_random_parameters(adapter, seed: int = 0, scale: float = 0.5) -> None:
    """Every trainable tensor drawn from N(0, scale²) with a fixed generator."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in adapter.parameters():
            if param.requires_grad:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


@pytest.fixture
def clip_model(tiny_backbone, tiny_batch):
    """The open_clip CLIP of ``tiny_backbone`` (same seed, same weights), checked to be the same model."""
    model = tiny_openclip_model("vit", seed=0)
    ids = tokenize(["a photo of a red thing."])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(ids), tiny_backbone.encode_text(ids), atol=0, rtol=0)
        torch.testing.assert_close(
            model.encode_image(tiny_batch["image"]), tiny_backbone.encode_image(tiny_batch["image"]), atol=0, rtol=0
        )
    return model


def clip_image_and_final_tokens(model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's image features and every token after its final norm ``ln_post``, ``(B, 1 + N, w)``."""
    seen = []
    handle = model.visual.ln_post.register_forward_hook(lambda module, inputs, output: seen.append(output))
    try:
        with torch.no_grad():
            features = model.encode_image(images)
    finally:
        handle.remove()
    return features, seen[0]


def attention_pool(patches: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """h = Σ_i a_i z_i with a = softmax(Z q / √w) over the N patch tokens."""
    scores = patches @ query / math.sqrt(patches.shape[-1])
    weights = scores.exp() / scores.exp().sum(dim=1, keepdim=True)
    return (weights[..., None] * patches).sum(dim=1)


def expected_image_feature(adapter, model, images, alpha: float) -> torch.Tensor:
    """f = normalize((1 − α) normalize(f_clip) + α normalize(h W_h)), Z the final-norm tokens without CLS."""
    clip, tokens = clip_image_and_final_tokens(model, images)
    patches = tokens[:, 1:]  # CLIP's one prefix token is the class token
    head = adapter.head
    projection = head.projection if head.projection is not None else model.visual.proj
    head_feature = attention_pool(patches, head.query.detach()) @ projection.detach()
    return F.normalize((1 - alpha) * F.normalize(clip, dim=-1) + alpha * F.normalize(head_feature, dim=-1), dim=-1)


def expected_continuous_text(adapter, model) -> torch.Tensor:
    """t^c_c: "[SOS][ctx + b_c][class][.][EOT]" through CLIP's text tower, b_c = W2 ReLU(W1 k_c + b1) + b2."""
    task = adapter.task
    with torch.no_grad():
        descriptions = F.normalize(model.encode_text(tokenize([task.knowledge[c] for c in task.classnames])), dim=-1)
    first, second = adapter.bias[0], adapter.bias[2]
    hidden = (descriptions @ first.weight.t() + first.bias).clamp(min=0)
    bias = hidden @ second.weight.t() + second.bias
    context = adapter.prompt.ctx[None] + bias[:, None]
    n = context.shape[1]
    ids = tokenize([f"{' '.join(['X'] * n)} {prompt_name(c)}." for c in task.classnames])

    def with_context(module, inputs, embeddings):
        embeddings = embeddings.clone()
        embeddings[:, 1 : 1 + n] = context
        return embeddings

    handle = model.token_embedding.register_forward_hook(with_context)
    try:
        with torch.no_grad():
            return model.encode_text(ids, normalize=True)
    finally:
        handle.remove()


def test_attention_pooling_with_a_nonzero_query(make_kapt, clip_model):
    adapter = make_kapt()
    set_random_parameters(adapter, seed=1, scale=1.0)
    query = adapter.head.query.detach()
    patches = torch.randn(3, 16, query.shape[0], generator=torch.Generator().manual_seed(2))
    scores = patches @ query / math.sqrt(patches.shape[-1])
    assert scores.std() > 0.5  # the weights are far from uniform, so the pooled token is not the mean
    expected = attention_pool(patches, query)
    assert (expected - patches.mean(dim=1)).norm() > 0.1 * expected.norm()
    with torch.no_grad():
        torch.testing.assert_close(adapter.head.pool(patches), expected, atol=1e-6, rtol=0)
        head = adapter.head(patches, clip_model.visual.proj)
    torch.testing.assert_close(head, expected @ adapter.head.projection.detach(), atol=1e-6, rtol=1e-5)


def test_the_head_reads_the_final_norm_patch_tokens_without_the_class_token(make_kapt, clip_model, tiny_batch):
    adapter = make_kapt()
    seen = []
    adapter.head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    with torch.no_grad():
        adapter.image_feature(tiny_batch)
    _, tokens = clip_image_and_final_tokens(clip_model, tiny_batch["image"])
    assert seen[0].shape == (len(tiny_batch["image"]), tokens.shape[1] - 1, tokens.shape[2])
    torch.testing.assert_close(seen[0], tokens[:, 1:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("head_proj", ["learned", "frozen"])
@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_the_image_feature_blends_clip_and_the_head(make_kapt, clip_model, tiny_batch, head_proj, alpha):
    adapter = make_kapt(alpha=alpha, head_proj=head_proj)
    set_random_parameters(adapter, seed=3)
    expected = expected_image_feature(adapter, clip_model, tiny_batch["image"], alpha)
    clip = F.normalize(clip_model.encode_image(tiny_batch["image"]).detach(), dim=-1)
    assert (expected - clip).norm(dim=-1).min() > 0.05  # the head's share moves every feature
    with torch.no_grad():
        torch.testing.assert_close(adapter.image_feature(tiny_batch), expected, atol=1e-6, rtol=0)


def test_the_continuous_prompts_with_a_nonzero_bias(make_kapt, clip_model):
    adapter = make_kapt()
    set_random_parameters(adapter, seed=4)
    expected = expected_continuous_text(adapter, clip_model)
    with torch.no_grad():
        assert adapter.class_bias().abs().amin(dim=1).gt(0).all()
        torch.testing.assert_close(adapter.text_features(), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.35), (0.6, 0.8)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_logits_blend_the_discrete_and_continuous_cosines(make_kapt, clip_model, tiny_batch, alpha, beta, mode):
    adapter = make_kapt(alpha=alpha, beta=beta).train(mode == "train")
    set_random_parameters(adapter, seed=5)
    image = expected_image_feature(adapter, clip_model, tiny_batch["image"], alpha)
    with torch.no_grad():
        discrete = F.normalize(clip_model.encode_text(tokenize(adapter.discrete_texts)), dim=-1)
    continuous = expected_continuous_text(adapter, clip_model)
    scale = clip_model.logit_scale.exp().detach()
    expected = scale * (beta * image @ discrete.t() + (1 - beta) * image @ continuous.t())
    assert (image @ discrete.t() - image @ continuous.t()).abs().max() > 0.05  # beta weighs two different terms
    with torch.no_grad():
        logits = adapter(tiny_batch)["logits"]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
