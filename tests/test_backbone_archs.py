"""Every tower operation against open_clip's own forward, on one architecture of each family.

Random weights (``pretrained: null``) build offline. The table records which tower types each family
has, so a family whose towers silently lose their layer-level access fails here; a tower run with no
extra tokens equals open_clip's forward at 1e-6.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import pytest
import torch
from mmadapt.builtin.config import OpenClipConfig
from mmadapt.builtin.openclip import OpenClipBackbone
from mmadapt.errors import UserError
from mmadapt.towers import TokenImageTower, TokenTextTower

pytestmark = pytest.mark.slow

TEXTS = ["a photo of a dog.", "a sea_lion, a type of animal", "x"]


@dataclass(frozen=True)
class Supports:
    """Which tower types one architecture's towers are, beyond encode_text / encode_image / intermediates."""

    #: a TokenTextTower: token_embedding, encode_embeddings, layers (open_clip's text transformer pooled
    #: at the end token).
    text_prompts: bool
    #: a TokenImageTower: layers, prompts, prefixes, patch offsets (open_clip's ViT or a timm ViT trunk).
    image_tokens: bool
    #: the text tower is causal and pools at the end token.
    causal_text: bool


ARCHS = {
    "ViT-S-32": Supports(text_prompts=True, image_tokens=True, causal_text=True),
    "RN50": Supports(text_prompts=True, image_tokens=False, causal_text=True),
    "convnext_tiny": Supports(text_prompts=True, image_tokens=False, causal_text=True),
    "EVA02-B-16": Supports(text_prompts=True, image_tokens=False, causal_text=True),
    "MobileCLIP-S1": Supports(text_prompts=True, image_tokens=False, causal_text=False),
    "coca_ViT-B-32": Supports(text_prompts=False, image_tokens=True, causal_text=False),
    "ViTamin-S": Supports(text_prompts=True, image_tokens=True, causal_text=True),
    "vit_medium_patch16_gap_256": Supports(text_prompts=True, image_tokens=True, causal_text=True),
    "PE-Core-T-16-384": Supports(text_prompts=True, image_tokens=False, causal_text=True),
}


def build(arch: str) -> OpenClipBackbone:
    import open_clip

    if arch not in open_clip.list_models():
        pytest.skip(f"open_clip {open_clip.__version__} has no {arch}; the family came with a later release")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return OpenClipBackbone.from_config(OpenClipConfig(arch=arch, pretrained=None))


def exact(got: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


@pytest.fixture(autouse=True)
def few_threads() -> None:
    torch.set_num_threads(1)
    yield
    gc.collect()  # the next architecture's weights should not sit beside this one's


@pytest.mark.parametrize("arch", list(ARCHS))
@torch.no_grad()
def test_towers_match_open_clip(arch: str) -> None:
    supports = ARCHS[arch]
    backbone = build(arch)
    model = backbone.model
    text_tower, image_tower = backbone.text, backbone.image
    ids = text_tower.tokenize(TEXTS)
    size = backbone.preprocessing.size
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))

    text = backbone.encode_text(ids, normalize=True)
    exact(text, model.encode_text(ids, normalize=True))
    image = backbone.encode_image(pixels)
    exact(image, model.encode_image(pixels, normalize=False))
    assert text.shape[-1] == image.shape[-1] == backbone.embed_dim

    vocabulary = text_tower.vocabulary()
    assert len(vocabulary) == text_tower.vocab_size == int(ids.max()) + 1  # the end token is CLIP's last id
    assert text_tower.causal is supports.causal_text

    assert isinstance(text_tower, TokenTextTower) is supports.text_prompts
    if supports.text_prompts:
        eot = text_tower.eot_index(ids)
        embeddings = text_tower.token_embedding(ids)
        # The token tower run with no extra tokens is open_clip's own text forward.
        exact(text_tower.head(text_tower.run(text_tower.embed(embeddings)).tokens, eot), backbone.encode_text(ids))
        exact(text_tower.encode_embeddings(embeddings, eot), backbone.encode_text(ids))
        length = int(eot.max()) + 1
        cut = text_tower.encode_embeddings(embeddings[:, :length], eot)
        # causal promises exactly this: cutting after the end token changes nothing.
        assert torch.allclose(cut, backbone.encode_text(ids), atol=1e-5) is supports.causal_text
        if text_tower.shares_prefixes:
            # The start token, the same in every text, computed once for all of them.
            shared = text_tower.encode_shared_prefix(embeddings[:1, :1], embeddings[:, 1:length], eot)
            torch.testing.assert_close(shared, cut, atol=1e-5, rtol=0)
    else:
        with pytest.raises(UserError, match=f"backbone {backbone.name} has no token text tower"):
            backbone.require_token_text_tower("prompts", "fix")

    levels = image_tower.intermediates(pixels)
    assert len(levels) >= 4 and all(level.shape[0] == 2 for level in levels)
    first, last = image_tower.intermediates(pixels, layers=[0, -1])
    exact(first, levels[0])
    exact(last, levels[-1])
    assert image_tower.width in (last.shape[1], last.shape[-1])

    assert isinstance(image_tower, TokenImageTower) is supports.image_tokens
    if supports.image_tokens:
        # The token tower run with no extra tokens is open_clip's (or timm's) own image forward.
        run = image_tower.run(image_tower.embed(pixels), layers=[0, -1])
        exact(image_tower.head(run.tokens), image)
        exact(run.layers[0], levels[0])
        exact(run.layers[1], levels[-1])
        patches = image_tower.patch_count(size)
        tokens = image_tower.embed(pixels)
        start = image_tower.num_prefix_tokens
        zero = {0: (start, tokens[:, start:] + torch.zeros(patches, image_tower.width))}
        exact(image_tower.head(image_tower.run(tokens, replace=zero).tokens), image)
    else:
        with pytest.raises(UserError, match=f"backbone {backbone.name} has no ViT image tower"):
            backbone.require_token_image_tower("prompts", "fix")

    # The towers' parameter blocks are named as in the backbone and, with the temperature (and CoCa's
    # caption decoder, which neither tower runs), are all of them.
    named = dict(backbone.named_parameters())
    image_blocks, text_blocks = image_tower.parameter_blocks(), text_tower.parameter_blocks()
    assert all(named[name] is tensor for name, tensor in {**image_blocks, **text_blocks}.items())
    assert not set(image_blocks) & set(text_blocks)
    rest = set(named) - set(image_blocks) - set(text_blocks)
    towerless = {name for name in rest if not name.startswith("model.text_decoder.")}
    assert towerless <= {"model.logit_scale", "model.logit_bias"}


@pytest.mark.parametrize("arch", ["ViT-B-16-SigLIP", "roberta-ViT-B-32", "nllb-clip-base"])
def test_towers_that_need_hub_files_fail_offline_with_our_error(arch: str) -> None:
    """SigLIP's tokenizer and the Hugging Face text towers are fetched from the Hub even for random weights."""
    with pytest.raises(UserError, match=f"openclip: cannot get .*{arch}"):
        build(arch)
