"""The ``timm`` backbone on tiny random ViTs: features, tokens, prompts, prefixes, errors."""

from __future__ import annotations

import math

import pytest
import torch
from mmadapt.builtin.config import TimmConfig
from mmadapt.builtin.timm_vit import TimmBackbone
from mmadapt.errors import UserError
from mmadapt.testing_models import TINY_IMAGE_SIZE, tiny_timm_backbone
from torch import nn
from tower_calls import image_tokens, prompted_features

torch.set_num_threads(1)

N_PATCHES = (TINY_IMAGE_SIZE // 8) ** 2


@pytest.fixture(scope="module")
def vit() -> TimmBackbone:
    return tiny_timm_backbone()


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(0))


def naive_prefixed_attention(
    attn: nn.Module, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
) -> torch.Tensor:
    """Per-head softmax attention over the tokens and the prefix, written out by hand."""
    batch, _, width = x.shape
    head = width // attn.num_heads
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    k = torch.cat([k, keys.expand(batch, -1, -1)], dim=1)
    v = torch.cat([v, values.expand(batch, -1, -1)], dim=1)
    out = torch.empty_like(q)
    for h in range(attn.num_heads):
        cols = slice(h * head, (h + 1) * head)
        weights = (q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(head)).softmax(dim=-1)
        out[..., cols] = weights @ v[..., cols]
    return attn.proj(out)


def test_features_and_widths(vit: TimmBackbone, pixels: torch.Tensor) -> None:
    assert vit.text is None
    assert vit.embed_dim == vit.image.width == 64
    assert vit.encode_image(pixels).shape == (2, 64)
    torch.testing.assert_close(vit.encode_image(pixels), vit.model(pixels))
    assert vit.image.projection is None
    with pytest.raises(UserError, match="encode_text needs a text tower; backbone tiny timm vit has no text tower"):
        vit.encode_text(torch.zeros(1, 77, dtype=torch.long))


def test_image_tokens_final_cls_is_the_feature(vit: TimmBackbone, pixels: torch.Tensor) -> None:
    (tokens,) = image_tokens(vit, pixels)
    assert tokens.shape == (2, 1 + N_PATCHES, 64)
    torch.testing.assert_close(tokens[:, 0], vit.encode_image(pixels), atol=1e-6, rtol=0)
    first, last = image_tokens(vit, pixels, layers=[0, 1])
    torch.testing.assert_close(first, vit.model.blocks[0](vit.image.embed(pixels)))
    torch.testing.assert_close(last, tokens)


def test_prompted_without_prompts_equals_encode_image(vit: TimmBackbone, pixels: torch.Tensor) -> None:
    expected = vit.encode_image(pixels)
    torch.testing.assert_close(prompted_features(vit, pixels), expected, atol=1e-6, rtol=0)
    empty = (torch.zeros(1, 0, 64), torch.zeros(1, 0, 64))
    torch.testing.assert_close(prompted_features(vit, pixels, prefixes=[empty, empty]), expected, atol=1e-6, rtol=0)


def test_prefix_attention_matches_naive_reference(vit: TimmBackbone, pixels: torch.Tensor) -> None:
    block = vit.image.blocks[0]
    x = block.norm1(vit.image.embed(pixels))
    keys, values = torch.randn(1, 5, 64), torch.randn(2, 5, 64)
    expected = naive_prefixed_attention(block.block.attn, x, keys, values)
    torch.testing.assert_close(block.attention(x, (keys, values)), expected, atol=1e-5, rtol=0)


def test_prompts_and_prefixes_train_and_backbone_stays_frozen(vit: TimmBackbone, pixels: torch.Tensor) -> None:
    prompts = torch.randn(1, 4, 64, requires_grad=True)
    keys, values = torch.randn(1, 2, 64, requires_grad=True), torch.randn(1, 2, 64, requires_grad=True)
    out = prompted_features(vit, pixels, prompts=prompts, prefixes=[(keys, values)])
    assert not torch.allclose(out, vit.encode_image(pixels), atol=1e-4)
    out.square().sum().backward()
    for tensor in (prompts, keys, values):
        assert tensor.grad is not None and tensor.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in vit.parameters())


@pytest.mark.parametrize("overrides", [{"reg_tokens": 2}, {"global_pool": "avg", "class_token": False}])
def test_prefix_tokens_and_pooling_variants(overrides: dict, pixels: torch.Tensor) -> None:
    vit = tiny_timm_backbone(**overrides)
    expected_prefix = 1 + 2 if "reg_tokens" in overrides else 0
    assert vit.image.num_prefix_tokens == expected_prefix
    assert image_tokens(vit, pixels)[0].shape == (2, expected_prefix + N_PATCHES, 64)
    torch.testing.assert_close(prompted_features(vit, pixels), vit.encode_image(pixels), atol=1e-6, rtol=0)
    # Prompts are dropped before pooling, yet they change the pooled tokens through attention.
    prompted = prompted_features(vit, pixels, prompts=torch.randn(1, 3, 64))
    assert prompted.shape == (2, 64) and not torch.allclose(prompted, vit.encode_image(pixels))


@pytest.mark.parametrize("overrides", [{}, {"reg_tokens": 2}, {"global_pool": "avg", "class_token": False}])
def test_patch_offsets_reach_only_the_patch_tokens(overrides: dict, pixels: torch.Tensor) -> None:
    vit = tiny_timm_backbone(**overrides)
    start = vit.image.num_prefix_tokens
    zero = torch.zeros(N_PATCHES, 64)
    unchanged = prompted_features(vit, pixels, patch_offsets=zero)
    torch.testing.assert_close(unchanged, vit.encode_image(pixels), atol=1e-6, rtol=0)
    offsets = torch.randn(1, N_PATCHES, 64)
    seen = []
    handle = vit.model.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        (tokens,) = image_tokens(vit, pixels, patch_offsets=offsets)
    finally:
        handle.remove()
    plain = vit.image.embed(pixels)
    torch.testing.assert_close(seen[0][:, :start], plain[:, :start], atol=0, rtol=0)  # class and register tokens
    torch.testing.assert_close(seen[0][:, start:], plain[:, start:] + offsets, atol=1e-6, rtol=0)
    assert not torch.allclose(tokens, image_tokens(vit, pixels)[0], atol=1e-4)


@pytest.mark.parametrize("overrides", [{}, {"reg_tokens": 2}, {"global_pool": "avg", "class_token": False}])
def test_intermediates_are_each_blocks_tokens(overrides: dict, pixels: torch.Tensor) -> None:
    vit = tiny_timm_backbone(**overrides)
    first, last = vit.image.intermediates(pixels)
    torch.testing.assert_close(first, vit.model.blocks[0](vit.image.embed(pixels)))
    torch.testing.assert_close(vit.image.final_norm(last), image_tokens(vit, pixels)[0])
    (again,) = vit.image.intermediates(pixels, layers=[-2])
    torch.testing.assert_close(again, first)
    with pytest.raises(ValueError, match="out of range for a tower of 2 blocks"):
        vit.image.intermediates(pixels, layers=[2])


def test_preprocess_in_graph_matches_manual_path(vit: TimmBackbone) -> None:
    images = torch.rand(2, 3, 50, 41, requires_grad=True)
    prep = vit.preprocessing
    assert (prep.size, prep.mean, prep.std) == (TINY_IMAGE_SIZE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    resized = nn.functional.interpolate(images, size=(prep.size, prep.size), mode="bilinear", align_corners=False)
    features = vit.encode_image(images, preprocess=True)
    torch.testing.assert_close(features, vit.encode_image((resized - 0.5) / 0.5), atol=1e-6, rtol=0)
    features.square().sum().backward()  # a plain sum of layer-normed features is constant
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_local_checkpoint_without_classifier(tmp_path) -> None:
    import timm

    with torch.random.fork_rng():
        torch.manual_seed(3)
        source = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32).eval()
    torch.save(source.state_dict(), tmp_path / "vit.pt")  # with its 1000-class head
    config = TimmConfig(arch="vit_tiny_patch16_224", checkpoint_path=str(tmp_path / "vit.pt"), img_size=32)
    built = TimmBackbone.from_config(config)
    pixels = torch.randn(1, 3, 32, 32)
    expected = source.forward_head(source.forward_features(pixels), pre_logits=True)
    torch.testing.assert_close(built.encode_image(pixels), expected)

    with pytest.raises(UserError, match="does not exist"):
        TimmBackbone.from_config(TimmConfig(arch="vit_tiny_patch16_224", checkpoint_path=str(tmp_path / "none.pt")))
    torch.save({"bogus": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(UserError, match="cannot load checkpoint"):
        TimmBackbone.from_config(TimmConfig(arch="vit_tiny_patch16_224", checkpoint_path=str(tmp_path / "bad.pt")))


def test_offline_pretrained_explains_how_to_fix(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    config = TimmConfig(arch="vit_tiny_patch16_224.augreg_in21k", pretrained=True, cache_dir=str(tmp_path))
    with pytest.raises(UserError) as caught:
        TimmBackbone.from_config(config)
    message = str(caught.value)
    assert "vit_tiny_patch16_224.augreg_in21k" in message
    assert "backbone.checkpoint_path=/path/to/checkpoint" in message and "HF_HUB_CACHE" in message


def test_unreachable_hub_fails_at_once(tmp_path, unreachable_hub) -> None:
    config = TimmConfig(arch="vit_tiny_patch16_224.augreg_in21k", pretrained=True, cache_dir=str(tmp_path))
    with pytest.raises(UserError, match="the Hugging Face Hub cannot be reached .* and the files are not cached"):
        TimmBackbone.from_config(config)
    assert unreachable_hub.HF_HUB_OFFLINE is False


def test_user_errors_name_the_fix() -> None:
    with pytest.raises(UserError, match="unknown arch 'vit_tiny_patch16_244' \\(did you mean .*'vit_tiny_patch16_224'"):
        TimmBackbone.from_config(TimmConfig(arch="vit_tiny_patch16_244", pretrained=False))
    with pytest.raises(UserError, match="no pretrained tag 'augreg_in22k' \\(did you mean 'augreg_in21k'\\?\\)"):
        TimmBackbone.from_config(TimmConfig(arch="vit_tiny_patch16_224", pretrained="augreg_in22k"))
    with pytest.raises(UserError, match="is a ResNet; the timm backbone supports ViTs"):
        TimmBackbone.from_config(TimmConfig(arch="resnet10t", pretrained=False))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="already carries a pretrained tag"):
        TimmConfig(arch="vit_tiny_patch16_224.augreg_in21k", pretrained="augreg_in21k")
    with pytest.raises(ValueError, match="both name weights"):
        TimmConfig(arch="vit_tiny_patch16_224", pretrained="augreg_in21k", checkpoint_path="/x.pt")
    with pytest.raises(ValueError, match="img_size"):
        TimmConfig(img_size=0)
