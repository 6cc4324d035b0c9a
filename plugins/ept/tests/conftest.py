"""Shared fixtures: tiny random-weight backbones and a factory for the plugin's adapters."""

from __future__ import annotations

import os

import pytest
from ept_testing import CLASSNAMES

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
    """``make_adapter(name, backbone, classnames=CLASSNAMES, **options)`` from the registered class."""
    from mmadapt import Task
    from mmadapt_ept.config import EptConfig, EptVisualConfig
    from mmadapt_ept.text import Ept
    from mmadapt_ept.visual import EptVisual

    factories = {"ept": (EptConfig, Ept), "ept-visual": (EptVisualConfig, EptVisual)}

    def make(name: str, backbone, classnames=CLASSNAMES, **options):
        config_cls, factory = factories[name]
        task = Task(list(classnames), templates=["a photo of a {}."])
        return factory(config_cls(**options), backbone, task)

    return make
