"""Backbone.require_text_tower and Backbone.patch_token_count: the checks adapters run before building."""

from __future__ import annotations

import pytest
from mmadapt import UserError
from mmadapt.testing_models import tiny_openclip_backbone, tiny_timm_backbone


def test_text_tower_check_passes_on_clip_and_names_key_and_fix_on_image_only_models():
    tiny_openclip_backbone().require_text_tower("adapter.name=x learns text prompts", "use a CLIP backbone")
    vit = tiny_timm_backbone()
    with pytest.raises(UserError, match=rf"^adapter.name=x learns text prompts; backbone {vit.name} has no text "
                       r"tower: use a CLIP backbone$"):
        vit.require_text_tower("adapter.name=x learns text prompts", "use a CLIP backbone")


def test_patch_token_count_is_the_grid_size_without_prefix_tokens():
    clip = tiny_openclip_backbone()
    size = clip.preprocessing.size
    patch = clip.model.visual.patch_size
    patch = patch[0] if isinstance(patch, tuple) else patch
    assert clip.patch_token_count("x", "y") == (size // patch) ** 2
    vit = tiny_timm_backbone(reg_tokens=2)
    grid = vit.model.patch_embed.grid_size
    assert vit.num_prefix_tokens == 3
    assert vit.patch_token_count("x", "y") == grid[0] * grid[1]


def test_patch_token_count_on_a_resnet_tower_names_key_and_fix():
    resnet = tiny_openclip_backbone("resnet")
    with pytest.raises(UserError, match=r"^adapter.head=true pools patch tokens; backbone .* has no ViT image tower "
                       r"\(.*\): set adapter.head=false$"):
        resnet.patch_token_count("adapter.head=true pools patch tokens", "set adapter.head=false")
