"""Backbone.require_*: the checks adapters run before building; TokenImageTower.patch_count."""

from __future__ import annotations

import pytest
from mmadapt import UserError
from mmadapt.testing_models import tiny_openclip_backbone, tiny_timm_backbone


def test_text_tower_check_passes_on_clip_and_names_key_and_fix_on_image_only_models():
    tiny_openclip_backbone().require_text_tower("adapter.name=x learns text prompts", "use a CLIP backbone")
    vit = tiny_timm_backbone()
    with pytest.raises(UserError, match=rf"^adapter.name=x learns text prompts; backbone {vit.name} has no text "
                       r"tower: use a CLIP backbone \(CLIP backbones have a text tower: openclip, shapes-clip\)$"):
        vit.require_text_tower("adapter.name=x learns text prompts", "use a CLIP backbone")


def test_patch_count_is_the_grid_size_without_prefix_tokens():
    clip = tiny_openclip_backbone()
    size = clip.preprocessing.size
    patch = clip.model.visual.patch_size
    patch = patch[0] if isinstance(patch, tuple) else patch
    assert clip.require_token_image_tower("x", "y").patch_count(size) == (size // patch) ** 2
    vit = tiny_timm_backbone(reg_tokens=2)
    grid = vit.model.patch_embed.grid_size
    assert vit.image.num_prefix_tokens == 3
    assert vit.image.patch_count(size) == grid[0] * grid[1]


def test_a_resnet_tower_is_no_token_tower_and_the_error_names_key_fix_and_what_works():
    resnet = tiny_openclip_backbone("resnet")
    with pytest.raises(UserError, match=r"^adapter.head=true pools patch tokens; backbone .* has no ViT image tower "
                       r"\(its image tower is a ModifiedResNet\): set adapter.head=false \(ViT image towers serve: "):
        resnet.require_token_image_tower("adapter.head=true pools patch tokens", "set adapter.head=false")
