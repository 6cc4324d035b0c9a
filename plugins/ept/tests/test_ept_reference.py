"""Prompt fusion, the gate and multi-space projection with non-zero parameters, against ept.md written out here.

Every trainable tensor gets seeded random values, so the offset, the fusion attention, the gate and
each subspace act. The expected prompt comes from the formulas of ept.md ("Our specification") in
plain torch, and the expected features from the raw open_clip or timm model the tiny backbone wraps
(and open_clip's tokenizer), whose token embeddings (text) or pre-norm output (image) a hook replaces
with the prompted sequence the port to CLIP describes; nothing of the adapter's or the backbone's code
computes an expected value.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from ept_testing import CLASSNAMES
from mmadapt import prompt_name
from mmadapt.testing_models import tiny_openclip_model, tiny_timm_model
from open_clip import tokenize

SWITCHES = [(True, False), (False, True), (True, True)]
SWITCH_IDS = ["fusion", "projection", "fusion+projection"]


def set_random_parameters(adapter, seed: int = 0, scale: float = 0.3) -> None:
    """Every trainable tensor (P_s, A, B, U, V, W_g, b_g) drawn from N(0, scale²) with a fixed generator."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in adapter.parameters():
            if param.requires_grad:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)


def short_prompt(adapter) -> torch.Tensor:
    """P_s: CoOp's context of ``ept``, the visual prompt of ``ept-visual``."""
    visual = getattr(adapter, "ctx", None)
    return adapter.prompt.ctx if visual is None else visual


def expected_parts(adapter, fusion: bool, projection: bool) -> dict[str, torch.Tensor]:
    """Δ, P_f, g and P by ept.md's formulas, from the adapter's raw parameters."""
    A, B = adapter.parts.offset.A.detach(), adapter.parts.offset.B.detach()
    short = short_prompt(adapter).detach()
    rank, width = A.shape[1], short.shape[1]
    offset = adapter.config.alpha / math.sqrt(rank) * (A @ B)
    fused = short
    if fusion:
        scores = short @ offset.t() / math.sqrt(width)
        attention = scores.exp() / scores.exp().sum(dim=1, keepdim=True)  # softmax over the s offset rows
        fused = short + attention @ offset
    parts = {"offset": offset, "fused": fused, "prompt": fused}
    if projection:
        projector = adapter.parts.projection
        U, V = projector.U.detach(), projector.V.detach()
        W, b = projector.gate.weight.detach(), projector.gate.bias.detach()
        logits = W @ fused.mean(dim=0) + b
        gate = logits.exp() / logits.exp().sum()
        prompt = fused.clone()
        for k in range(U.shape[0]):
            prompt = prompt + gate[k] * (fused @ U[k] @ V[k])
        parts.update(gate=gate, prompt=prompt)
    return parts


def test_the_random_parameters_make_every_part_act(backbone, make_adapter):
    """Guards the tests below against passing vacuously: each term moves the prompt and the gate is far from 1/K."""
    adapter = make_adapter("ept", backbone, init="a photo of a")
    set_random_parameters(adapter)
    parts = expected_parts(adapter, fusion=True, projection=True)
    short = adapter.prompt.ctx.detach()
    assert (parts["fused"] - short).norm() > 0.1 * short.norm()
    assert (parts["prompt"] - parts["fused"]).norm() > 0.1 * parts["fused"].norm()
    assert parts["gate"].max() - parts["gate"].min() > 0.1


@pytest.mark.parametrize("name", ["ept", "ept-visual"])
@pytest.mark.parametrize(("fusion", "projection"), SWITCHES, ids=SWITCH_IDS)
def test_reconstructed_prompt_and_offset_follow_the_formulas(backbone, make_adapter, name, fusion, projection):
    adapter = make_adapter(name, backbone, fusion=fusion, projection=projection, rank=4, n_ctx=3)
    set_random_parameters(adapter, seed=1)
    expected = expected_parts(adapter, fusion, projection)
    with torch.no_grad():
        if name == "ept":
            prompt, offset = adapter.reconstructed_prompt(), adapter.parts.offset()
        else:
            prompt, offset = adapter.image_prompt_and_offsets()
    torch.testing.assert_close(offset, expected["offset"], atol=1e-6, rtol=0)
    torch.testing.assert_close(prompt, expected["prompt"], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["ept", "ept-visual"])
@pytest.mark.parametrize("fusion", [False, True])
def test_the_gate_follows_the_formula_on_the_fused_prompt(backbone, make_adapter, name, fusion):
    adapter = make_adapter(name, backbone, fusion=fusion, subspaces=5)
    set_random_parameters(adapter, seed=2)
    expected = expected_parts(adapter, fusion, projection=True)
    with torch.no_grad():
        gate = adapter.parts.projection.gates(expected["fused"])
    torch.testing.assert_close(gate, expected["gate"], atol=1e-6, rtol=0)


# -- features: the raw models the tiny backbones wrap, with the prompted sequence put in by a hook --------


@pytest.fixture(scope="module")
def clip_model(backbone):
    """The open_clip CLIP of the ``backbone`` fixture (same seed, same weights), checked to be the same model."""
    model = tiny_openclip_model("vit", seed=0)
    ids = tokenize(["a photo of a dog."])
    images = pixels(backbone)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_text(ids), backbone.encode_text(ids), atol=0, rtol=0)
        torch.testing.assert_close(model.encode_image(images), backbone.encode_image(images), atol=0, rtol=0)
    return model


@pytest.fixture(scope="module")
def timm_model(timm_backbone):
    """The timm ViT with 2 registers of the ``timm_backbone`` fixture, checked to be the same model."""
    model = tiny_timm_model(seed=0, reg_tokens=2)
    images = pixels(timm_backbone)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(images), pre_logits=True)
        torch.testing.assert_close(timm_backbone.encode_image(images), expected, atol=0, rtol=0)
    return model


def pixels(backbone, n: int = 3) -> torch.Tensor:
    size = backbone.preprocessing.size
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))


def clip_text_features(model, ids: torch.Tensor, prompt: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """CLIP's text features of ``ids`` with P in positions 1..m and Δ added to the first s positions.

    The token embeddings are replaced before the positional embedding; CLIP pools at the end token.
    """
    m, s = prompt.shape[0], offset.shape[0]

    def prompted(module, inputs, embeddings):
        embeddings = embeddings.clone()
        embeddings[:, 1 : 1 + m] = prompt
        embeddings[:, :s] += offset
        return embeddings

    handle = model.token_embedding.register_forward_hook(prompted)
    try:
        with torch.no_grad():
            return model.encode_text(ids, normalize=True)
    finally:
        handle.remove()


def vit_image_features(pre_norm, forward, prefix: int, images, prompt, offset) -> torch.Tensor:
    """Features of a ViT whose tokens after the pre-norm become [prefix][P][patches + Δ]; pooled at the class token."""

    def prompted(module, inputs, tokens):
        batch = tokens.shape[0]
        return torch.cat([tokens[:, :prefix], prompt.expand(batch, -1, -1), tokens[:, prefix:] + offset], dim=1)

    handle = pre_norm.register_forward_hook(prompted)
    try:
        with torch.no_grad():
            return F.normalize(forward(images), dim=-1)
    finally:
        handle.remove()


@pytest.mark.parametrize("truncate", [False, True])
def test_text_features_with_fusion_gate_and_projection(backbone, clip_model, make_adapter, truncate):
    adapter = make_adapter("ept", backbone, rank=4, truncate=truncate).eval()
    set_random_parameters(adapter, seed=4)
    m = adapter.prompt.ctx.shape[0]
    ids = tokenize([f"{' '.join(['X'] * m)} {prompt_name(name)}." for name in CLASSNAMES])
    # s: every position (77), or with truncation the longest prompt; CLIP's end token has the largest id.
    s = int(ids.argmax(dim=-1).max()) + 1 if truncate else ids.shape[1]
    assert adapter.parts.offset.A.shape[0] == s
    expected = expected_parts(adapter, fusion=True, projection=True)
    features = clip_text_features(clip_model, ids, expected["prompt"], expected["offset"])
    with torch.no_grad():
        torch.testing.assert_close(adapter.text_features(), features, atol=1e-6, rtol=0)
        out = adapter({"image_features": F.normalize(torch.randn(2, backbone.embed_dim), dim=-1)})
    torch.testing.assert_close(out["text_features"], features, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("fusion", "projection"), SWITCHES, ids=SWITCH_IDS)
def test_clip_image_features_with_fusion_gate_and_projection(backbone, clip_model, make_adapter, fusion, projection):
    adapter = make_adapter("ept-visual", backbone, fusion=fusion, projection=projection, rank=4, n_ctx=3).eval()
    set_random_parameters(adapter, seed=5)
    expected = expected_parts(adapter, fusion, projection)
    images = pixels(backbone)
    visual = clip_model.visual
    features = vit_image_features(visual.ln_pre, visual, 1, images, expected["prompt"], expected["offset"])
    with torch.no_grad():
        out = adapter({"image": images})
    torch.testing.assert_close(out["features"], features, atol=1e-6, rtol=0)


def test_timm_image_features_with_registers(timm_backbone, timm_model, make_adapter):
    adapter = make_adapter("ept-visual", timm_backbone, rank=4, n_ctx=3).eval()  # fusion and projection on
    set_random_parameters(adapter, seed=6)
    expected = expected_parts(adapter, fusion=True, projection=True)
    images = pixels(timm_backbone)

    def forward(x):
        return timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)

    features = vit_image_features(timm_model.norm_pre, forward, 3, images, expected["prompt"], expected["offset"])
    with torch.no_grad():
        out = adapter({"image": images})
    torch.testing.assert_close(out["features"], features, atol=1e-6, rtol=0)
