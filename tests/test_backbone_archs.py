"""Every Backbone operation against open_clip's own forward, on one architecture of each family.

Random weights (``pretrained: null``) build offline. An operation a family cannot support must say
so with a ``NotImplementedError`` naming the backbone; the table records which ones each supports,
so an operation that silently stops working fails here.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from mmadapt.builtin.backbones import OpenClipConfig
from mmadapt.builtin.openclip import OpenClipBackbone
from mmadapt.errors import UserError

pytestmark = pytest.mark.slow

TEXTS = ["a photo of a dog.", "a sea_lion, a type of animal", "x"]


@dataclass(frozen=True)
class Supports:
    """What one architecture's towers support beyond encode_text / encode_image / image_intermediates."""

    #: token_embedding + encode_text_embeddings (open_clip's text transformer pooled at the end token).
    text_prompts: bool
    #: image_tokens, encode_image_prompted, patch offsets (open_clip's ViT or a timm ViT trunk).
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
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def unsupported(backbone: OpenClipBackbone, call: Callable[[], object]) -> None:
    with pytest.raises(NotImplementedError, match=f"{backbone.name}: .* is not supported"):
        call()


@pytest.fixture(autouse=True)
def few_threads() -> None:
    torch.set_num_threads(1)
    yield
    gc.collect()  # the next architecture's weights should not sit beside this one's


@pytest.mark.parametrize("arch", list(ARCHS))
@torch.no_grad()
def test_operations_match_open_clip(arch: str) -> None:
    supports = ARCHS[arch]
    backbone = build(arch)
    model = backbone.model
    ids = backbone.text.tokenize(TEXTS)
    size = backbone.preprocessing.size
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))

    text = backbone.encode_text(ids, normalize=True)
    exact(text, model.encode_text(ids, normalize=True))
    image = backbone.encode_image(pixels)
    exact(image, model.encode_image(pixels, normalize=False))
    assert text.shape[-1] == image.shape[-1] == backbone.embed_dim

    vocabulary = backbone.text.vocabulary()
    assert len(vocabulary) == backbone.text.vocab_size == int(ids.max()) + 1  # the end token is CLIP's last id
    assert backbone.text.causal is supports.causal_text

    eot = backbone.text.eot_index(ids)
    if supports.text_prompts:
        embeddings = backbone.text.token_embedding(ids)
        exact(backbone.text.encode_embeddings(embeddings, eot), backbone.encode_text(ids))
        length = int(eot.max()) + 1
        cut = backbone.text.encode_embeddings(embeddings[:, :length], eot)
        # causal_text promises exactly this: cutting after the end token changes nothing.
        assert torch.allclose(cut, backbone.encode_text(ids), atol=1e-5) is supports.causal_text
    else:
        unsupported(backbone, lambda: backbone.text.encode_embeddings(backbone.text.token_embedding(ids), eot))

    levels = backbone.image_intermediates(pixels)
    assert len(levels) >= 4 and all(level.shape[0] == 2 for level in levels)
    first, last = backbone.image_intermediates(pixels, layers=[0, -1])
    exact(first, levels[0])
    exact(last, levels[-1])
    assert backbone.image.width in (last.shape[1], last.shape[-1])

    if supports.image_tokens:
        exact(backbone.encode_image_prompted(pixels), image)
        patches = backbone.image.embed(pixels).shape[1] - backbone.image.num_prefix_tokens
        zero = torch.zeros(patches, backbone.image.width)
        exact(backbone.encode_image_prompted(pixels, patch_offsets=zero), image)
        exact(backbone.image_tokens(pixels, layers=[0])[0], levels[0])
        exact(backbone.image.head(levels[-1]), image)
    else:
        unsupported(backbone, lambda: backbone.encode_image_prompted(pixels))
        unsupported(backbone, lambda: backbone.image_tokens(pixels))


@pytest.mark.parametrize("arch", ["ViT-B-16-SigLIP", "roberta-ViT-B-32", "nllb-clip-base"])
def test_towers_that_need_hub_files_fail_offline_with_our_error(arch: str) -> None:
    """SigLIP's tokenizer and the Hugging Face text towers are fetched from the Hub even for random weights."""
    with pytest.raises(UserError, match=f"openclip: cannot get .*{arch}"):
        build(arch)
