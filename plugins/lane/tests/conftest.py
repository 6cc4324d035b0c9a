"""Shared fixtures: one torch thread, tiny random-weight ViT backbones and a multi-label task with four tasks."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""


@pytest.fixture(scope="session")
def clip_backbone():
    """A tiny random-weight open_clip CLIP: ViT image tower of 2 blocks, width 64, 17 tokens."""
    from mmadapt.testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone()


@pytest.fixture(scope="session")
def timm_backbone():
    """A tiny random-weight timm ViT with 2 register tokens (3 prefix tokens)."""
    from mmadapt.testing_models import tiny_timm_backbone

    return tiny_timm_backbone(reg_tokens=2)


@pytest.fixture(params=["clip", "timm"])
def backbone(request, clip_backbone, timm_backbone):
    """Each tiny ViT backbone in turn."""
    return {"clip": clip_backbone, "timm": timm_backbone}[request.param]
