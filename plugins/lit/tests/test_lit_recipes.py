"""Every lit recipe validates against the installed components."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmadapt.testing import check_recipe
from omegaconf import OmegaConf

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_lit" / "recipes"
LIT_RECIPES = sorted([*RECIPES.glob("lit-*.yaml"), *(RECIPES / "lit").glob("*.yaml")])


def test_there_are_shapes_and_paper_recipes():
    names = {path.name for path in LIT_RECIPES}
    assert {"lit-shapes-rave.yaml", "lit-shapes-clip-lit.yaml", "clip-lit-baid.yaml", "rave-baid.yaml"} <= names


@pytest.mark.parametrize("path", LIT_RECIPES, ids=lambda p: p.name)
def test_the_recipe_validates(path):
    recipe = check_recipe(OmegaConf.to_container(OmegaConf.load(path)), str(path))
    assert recipe.adapter.name in ("rave", "clip-lit", "clip-lit-latent")


def test_the_identity_backbone_is_validated_with_the_recipe_and_resolved_with_its_defaults():
    path = RECIPES / "lit" / "rave-baid.yaml"
    recipe = check_recipe(OmegaConf.to_container(OmegaConf.load(path)), str(path))
    identity = recipe.adapter.config.identity_backbone
    assert identity.name == "openclip" and identity.config.arch == "RN101"
    assert OmegaConf.to_container(recipe.resolved.adapter.identity_backbone) == {
        "name": "openclip", "arch": "RN101", "pretrained": "openai", "cache_dir": None, "quick_gelu": None
    }


def test_the_clip_lit_protocol_defaults_are_the_reference_codes_batches():
    # CLIP-LIT's train.py: prompt_batch_size 16 for both prompt loaders, train_batch_size 8; RAVE's configs
    # likewise (guidance_model.batch_size 16, unet_model.batch_size 8); views of 256 x 256.
    from mmadapt_lit.config import ClipLitProtocolConfig

    config = ClipLitProtocolConfig()
    assert (config.prompt_init_batch_size, config.prompt_batch_size) == (16, 16)
    assert (config.enhance_batch_size, config.warmup_batch_size, config.prompt_view_size) == (8, 8, 256)
