"""Trainable parameters of kapt at ViT-B/16 width (open_clip ViT-B-16, random weights): 429,344 and 36,128."""

from __future__ import annotations

import pytest
from mmadapt import Task


@pytest.fixture(scope="module")
def vit_b16():
    """open_clip ViT-B-16 without pretrained weights (text width 512, joint 512, vision width 768)."""
    import open_clip
    import torch
    from mmadapt import OpenClipBackbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-16", pretrained=None)
    return OpenClipBackbone(model, name="ViT-B-16")


@pytest.mark.parametrize(("head_proj", "expected"), [("learned", 429_344), ("frozen", 36_128)])
def test_parameter_counts_at_vit_b16_width(vit_b16, head_proj, expected):
    from mmadapt_kapt.config import KaptConfig
    from mmadapt_kapt.kapt import Kapt

    task = Task(["cat", "dog"], knowledge={"cat": "a small animal with whiskers", "dog": "a loyal animal"})
    adapter = Kapt(KaptConfig(head_proj=head_proj), vit_b16, task)
    assert adapter.parameter_counts()["trainable"] == expected
    groups = {name: sum(p.numel() for p in params) for name, params in adapter.parameter_groups().items()}
    assert groups == {"prompt": 2_048, "knowledge": 33_312, "head": 768 + (393_216 if head_proj == "learned" else 0)}
