"""Shared fixtures: tiny random-weight backbones and a factory for the plugin's adapters."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Class names that exercise the prompt layout: multi-token names, "_" for spaces, punctuation.
CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern", "aquarium_fish"]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""


@pytest.fixture(scope="session")
def backbone():
    """A tiny random-weight open_clip CLIP (text width 64) with CLIP's BPE tokenizer."""
    from mmadapt.testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone()


@pytest.fixture(scope="session")
def timm_backbone():
    """A tiny random-weight timm ViT with 2 register tokens (3 prefix tokens), image only."""
    from mmadapt.testing_models import tiny_timm_backbone

    return tiny_timm_backbone(reg_tokens=2)


@pytest.fixture
def make_adapter():
    """``make_adapter(name, backbone, classnames=CLASSNAMES, **options)`` through the registered factory."""
    from mmadapt import Task
    from mmadapt_ept import plugin

    factories = {
        "ept": (plugin.EptConfig, plugin.build_ept),
        "ept-visual": (plugin.EptVisualConfig, plugin.build_ept_visual),
    }

    def make(name: str, backbone, classnames=CLASSNAMES, **options):
        config_cls, factory = factories[name]
        task = Task(list(classnames), templates=["a photo of a {}."])
        return factory(config_cls(**options), backbone, task)

    return make


def randomise(adapter, seed: int = 0) -> None:
    """Give B, V and the gate non-zero values, so that the offset, fusion and projection all act."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in adapter.named_parameters():
            if param.requires_grad and name.split(".")[-1] in ("B", "V", "weight", "bias") and "head" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
