"""Token towers: ``run`` with tokens inserted or replaced at chosen layers against loops written by hand over
open_clip's and timm's own blocks; key/value prefixes as a shared prefix; parameter blocks; capabilities."""

from __future__ import annotations

import pytest
import torch
from mmadapt import Backbone, TokenImageTower, TokenTextTower, UserError
from mmadapt.testing_models import TINY_IMAGE_SIZE, tiny_openclip_backbone, tiny_timm_backbone

torch.set_num_threads(1)

TEXTS = ["a photo of a dog.", "a photo of a sea_lion, a type of animal.", "x"]


@pytest.fixture(scope="module")
def clip() -> Backbone:
    return tiny_openclip_backbone("vit")


@pytest.fixture
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, generator=torch.Generator().manual_seed(0))


def tokens_like(n: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(1, n, width, generator=torch.Generator().manual_seed(seed))


def resblocks_with_mask(backbone: Backbone, x: torch.Tensor, layer: int, causal: bool) -> torch.Tensor:
    """open_clip's residual block ``layer`` of the text (causal) or image tower on batch-first tokens."""
    model = backbone.model
    transformer = model.transformer if causal else model.visual.transformer
    block = transformer.resblocks[layer]
    length = x.shape[1]
    mask = torch.full((length, length), float("-inf")).triu(1) if causal else None
    if transformer.batch_first:
        return block(x, attn_mask=mask)
    return block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)


# -- no extra tokens: the plain forward ----------------------------------------------------------


def test_a_run_without_tokens_is_the_plain_forward_bit_for_bit(clip: Backbone, pixels: torch.Tensor) -> None:
    text = clip.text
    ids = text.tokenize(TEXTS)
    with torch.no_grad():
        features = text.head(text.run(text.embed(text.token_embedding(ids))).tokens, text.eot_index(ids))
        assert torch.equal(features, clip.model.encode_text(ids))
        image = clip.image
        assert torch.equal(image.head(image.run(image.embed(pixels)).tokens), clip.model.encode_image(pixels))
    vit = tiny_timm_backbone(reg_tokens=2)
    with torch.no_grad():
        assert torch.equal(vit.image.head(vit.image.run(vit.image.embed(pixels)).tokens), vit.encode_image(pixels))


# -- text tower: inserted and replaced tokens ------------------------------------------------------


@pytest.mark.parametrize("layer", [0, 1])
def test_text_tokens_inserted_at_layer_k_equal_a_loop_over_the_blocks(clip: Backbone, layer: int) -> None:
    """MMRL's text side: tokens after the start token from block k on, the causal mask over the longer sequence."""
    text = clip.text
    ids = text.tokenize(TEXTS)
    eot = text.eot_index(ids)
    extra = tokens_like(3, text.width, seed=1)
    with torch.no_grad():
        run = text.run(text.embed(text.token_embedding(ids)), insert={layer: extra}, insert_at=1)
        x = text.embed(text.token_embedding(ids))
        for index in range(text.depth):
            if index == layer:
                x = torch.cat([x[:, :1], extra.expand(len(TEXTS), -1, -1), x[:, 1:]], dim=1)
            x = resblocks_with_mask(clip, x, index, causal=True)
        expected_inserted, expected = x[:, 1:4], torch.cat([x[:, :1], x[:, 4:]], dim=1)
    torch.testing.assert_close(run.tokens, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(run.inserted, expected_inserted, atol=1e-6, rtol=0)
    features = text.head(run.tokens, eot)
    assert features.shape == (3, clip.embed_dim)
    assert not torch.allclose(features, clip.encode_text(ids), atol=1e-4)


def test_text_context_replaced_at_deeper_layers_equals_a_loop_over_the_blocks(clip: Backbone) -> None:
    """IVLP / MaPLe's text side: the context positions 1 .. n get new tokens before blocks 0 and 1."""
    text = clip.text
    ids = text.tokenize(TEXTS)
    n = 2
    first, second = tokens_like(n, text.width, seed=2), tokens_like(n, text.width, seed=3)
    with torch.no_grad():
        embedded = text.embed(text.token_embedding(ids))
        run = text.run(embedded, replace={0: (1, first), 1: (1, second)})
        x = embedded
        for index, new in enumerate((first, second)):
            x = torch.cat([x[:, :1], new.expand(len(TEXTS), -1, -1), x[:, 1 + n :]], dim=1)
            x = resblocks_with_mask(clip, x, index, causal=True)
    torch.testing.assert_close(run.tokens, x, atol=1e-6, rtol=0)


def test_a_shared_prefix_computed_once_gives_the_full_sequences_features(clip: Backbone) -> None:
    """Positions shared by every sequence of a causal tower run once; the rest attend to their keys and values."""
    text = clip.text
    assert text.causal
    ids = text.tokenize(["a photo of a dog.", "a photo of a cat with a hat.", "a photo of a x"])
    eot = text.eot_index(ids)
    shared_length = 5  # start token and "a photo of a"
    assert bool((ids[:, :shared_length] == ids[:1, :shared_length]).all())
    with torch.no_grad():
        x = text.embed(text.token_embedding(ids[:, : int(eot.max()) + 1]))
        full = text.run(x).tokens
        shared, rest = x[:1, :shared_length], x[:, shared_length:]
        for block in text.blocks:
            keys_values = block.keys_values(shared)
            shared, rest = block(shared), block(rest, keys_values)
    torch.testing.assert_close(rest, full[:, shared_length:], atol=1e-5, rtol=0)
    torch.testing.assert_close(shared.expand(3, -1, -1), full[:, :shared_length], atol=1e-6, rtol=0)


# -- image tower: inserted and replaced tokens ----------------------------------------------------


def test_image_tokens_after_the_patches_replaced_per_layer_equal_a_loop(clip: Backbone, pixels: torch.Tensor) -> None:
    """IVLP / MaPLe / PromptSRC's image side: tokens after the patch tokens, new ones at block 1."""
    image = clip.image
    first, second = tokens_like(4, image.width, seed=4), tokens_like(4, image.width, seed=5)
    with torch.no_grad():
        run = image.run(image.embed(pixels), insert={0: first, 1: second})
        x = image.embed(pixels)
        patches_end = x.shape[1]
        for index, extra in enumerate((first, second)):
            x = torch.cat([x[:, :patches_end], extra.expand(2, -1, -1)], dim=1)
            x = resblocks_with_mask(clip, x, index, causal=False)
    torch.testing.assert_close(run.tokens, x[:, :patches_end], atol=1e-6, rtol=0)
    torch.testing.assert_close(run.inserted, x[:, patches_end:], atol=1e-6, rtol=0)
    pooled = image.head(run.tokens)
    torch.testing.assert_close(pooled, image.final_norm(x[:, 0]) @ image.projection, atol=1e-6, rtol=0)


def test_image_tokens_after_the_class_token_from_a_deeper_layer(pixels: torch.Tensor) -> None:
    """MMRL's image side on a timm ViT with registers: tokens after the class token from block 1 on."""
    vit = tiny_timm_backbone(reg_tokens=2)
    image = vit.image
    extra = tokens_like(3, image.width, seed=6)
    with torch.no_grad():
        run = image.run(image.embed(pixels), insert={1: extra}, insert_at=1, layers=[0, 1])
        x = vit.model.blocks[0](image.embed(pixels))
        after_first = x
        x = torch.cat([x[:, :1], extra.expand(2, -1, -1), x[:, 1:]], dim=1)
        x = vit.model.blocks[1](x)
    torch.testing.assert_close(run.layers[0], after_first, atol=1e-6, rtol=0)
    torch.testing.assert_close(run.tokens, torch.cat([x[:, :1], x[:, 4:]], dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(run.layers[1], run.tokens)
    torch.testing.assert_close(run.inserted, x[:, 1:4], atol=1e-6, rtol=0)


def test_image_positions_replaced_at_a_deeper_layer_equal_a_loop(pixels: torch.Tensor) -> None:
    """Replaced positions at block 1 of a timm ViT, beside tokens inserted after the patches at block 0."""
    vit = tiny_timm_backbone()
    image = vit.image
    extra, new = tokens_like(2, image.width, seed=10), tokens_like(3, image.width, seed=11)
    with torch.no_grad():
        run = image.run(image.embed(pixels), insert={0: extra}, replace={1: (1, new)})
        x = image.embed(pixels)
        length = x.shape[1]
        x = vit.model.blocks[0](torch.cat([x, extra.expand(2, -1, -1)], dim=1))
        x = vit.model.blocks[1](torch.cat([x[:, :1], new.expand(2, -1, -1), x[:, 4:]], dim=1))
    torch.testing.assert_close(run.tokens, x[:, :length], atol=1e-6, rtol=0)
    torch.testing.assert_close(run.inserted, x[:, length:], atol=1e-6, rtol=0)


def test_inserted_tokens_get_gradients_and_the_tower_stays_frozen(clip: Backbone, pixels: torch.Tensor) -> None:
    image = clip.image
    extra = tokens_like(2, image.width, seed=7).requires_grad_()
    new = tokens_like(2, image.width, seed=8).requires_grad_()
    run = image.run(image.embed(pixels), insert={0: extra}, replace={1: (1, new)})
    image.head(run.tokens).square().sum().backward()
    assert extra.grad is not None and extra.grad.abs().sum() > 0
    assert new.grad is not None and new.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())


def test_bad_positions_are_explained(clip: Backbone, pixels: torch.Tensor) -> None:
    image = clip.image
    tokens = image.embed(pixels)
    extra = tokens_like(2, image.width, seed=9)
    with pytest.raises(ValueError, match="outside inserted tokens"):
        image.run(tokens, insert={0: extra}, insert_at=1, replace={1: (0, tokens_like(2, image.width, seed=1))})
    with pytest.raises(ValueError, match="insert_at=99 is outside the 17 input positions"):
        image.run(tokens, insert={0: extra}, insert_at=99)


# -- parameter blocks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: tiny_openclip_backbone("vit"),
        lambda: tiny_openclip_backbone("resnet"),
        lambda: tiny_timm_backbone(reg_tokens=2),
    ],
    ids=["vit", "resnet", "timm"],
)
def test_parameter_blocks_are_named_as_in_the_backbone_and_complete(build) -> None:
    backbone = build()
    named = dict(backbone.named_parameters())
    image = backbone.image.parameter_blocks()
    text = backbone.text.parameter_blocks() if backbone.text is not None else {}
    assert all(named[name] is tensor for name, tensor in {**image, **text}.items())
    assert not set(image) & set(text)
    assert set(named) - set(image) - set(text) <= {"model.logit_scale"}


def test_a_vit_towers_blocks_are_the_tensors_atlas_composes(clip: Backbone) -> None:
    blocks = clip.image.parameter_blocks()
    for name in (
        "class_embedding",
        "positional_embedding",
        "conv1.weight",
        "ln_pre.weight",
        "ln_post.bias",
        "proj",
        "transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.1.mlp.c_proj.bias",
    ):
        assert f"model.visual.{name}" in blocks
    assert all(name.startswith("model.visual.") for name in blocks)
    text = clip.text.parameter_blocks()
    assert {"model.token_embedding.weight", "model.positional_embedding", "model.text_projection"} <= set(text)


# -- capabilities ---------------------------------------------------------------------------------


def test_tower_types_say_what_a_backbone_can_do() -> None:
    clip, resnet, vit = tiny_openclip_backbone(), tiny_openclip_backbone("resnet"), tiny_timm_backbone()
    assert isinstance(clip.image, TokenImageTower) and isinstance(clip.text, TokenTextTower)
    assert not isinstance(resnet.image, TokenImageTower) and isinstance(resnet.text, TokenTextTower)
    assert isinstance(vit.image, TokenImageTower) and vit.text is None
    assert clip.require_token_text_tower("x", "y") is clip.text
    assert vit.require_token_image_tower("x", "y") is vit.image
    with pytest.raises(
        UserError,
        match=r"^adapter.name=coop learns text prompts; backbone tiny timm vit has no text "
        r"tower: use a CLIP backbone \(CLIP backbones have a text tower: openclip, shapes-clip\)$",
    ):
        vit.require_token_text_tower("adapter.name=coop learns text prompts", "use a CLIP backbone")


def test_no_member_of_a_backbone_or_tower_class_only_raises() -> None:
    """What a backbone cannot do shows in its towers' types, never as members that always fail."""
    import ast
    import inspect

    import mmadapt.backbone
    import mmadapt.builtin.openclip
    import mmadapt.builtin.openclip_towers
    import mmadapt.builtin.timm_vit
    import mmadapt.towers

    only_raising = []
    for module in (
        mmadapt.backbone,
        mmadapt.towers,
        mmadapt.builtin.openclip,
        mmadapt.builtin.openclip_towers,
        mmadapt.builtin.timm_vit,
    ):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if not isinstance(node, ast.ClassDef):
                continue
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    docstring = isinstance(member.body[0], ast.Expr) and isinstance(member.body[0].value, ast.Constant)
                    body = member.body[1:] if docstring else member.body
                    if len(body) == 1 and isinstance(body[0], ast.Raise):
                        only_raising.append(f"{module.__name__}.{node.name}.{member.name}")
    assert not only_raising
