"""Shared fixtures: tiny open_clip backbones (random weights) and helpers to build the plugin's adapters."""

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
    """A tiny random-weight open_clip CLIP (text width 64, embed dim 32) with CLIP's BPE tokenizer."""
    from mmadapt.testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone()


@pytest.fixture(scope="session")
def wide_backbone():
    """An open_clip CLIP with ViT-B/16's text width and joint width (512), one text layer, tiny vision."""
    import torch
    from mmadapt import OpenClipBackbone
    from mmadapt.testing_models import tiny_openclip_config
    from open_clip.model import CLIP

    config = tiny_openclip_config()
    config["embed_dim"] = 512
    config["text_cfg"].update(width=512, heads=8, layers=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CLIP(**config)
    return OpenClipBackbone(model, name="openclip width 512")


@pytest.fixture
def make_adapter():
    """``make_adapter(name, backbone, classnames=CLASSNAMES, **options)`` through the registered factory."""
    from mmadapt import Task, get_plugin_manager

    def make(name: str, backbone, classnames=CLASSNAMES, templates=None, **options):
        component = get_plugin_manager().registry.get("adapter", name)
        task = Task(list(classnames), templates=templates or ["a photo of a {}."])
        return component.build(component.config(**options), backbone, task)

    return make
