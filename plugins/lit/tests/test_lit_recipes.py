"""Every lit recipe validates against the installed components."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmadapt.testing import check_recipe
from omegaconf import OmegaConf

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
LIT_RECIPES = sorted([*RECIPES.glob("lit-*.yaml"), *(RECIPES / "lit").glob("*.yaml")])


def test_there_are_shapes_and_paper_recipes():
    names = {path.name for path in LIT_RECIPES}
    assert {"lit-shapes-rave.yaml", "lit-shapes-clip-lit.yaml", "clip-lit-baid.yaml", "rave-baid.yaml"} <= names


@pytest.mark.parametrize("path", LIT_RECIPES, ids=lambda p: p.name)
def test_the_recipe_validates(path):
    recipe = check_recipe(OmegaConf.to_container(OmegaConf.load(path)), str(path))
    assert recipe.adapter.name in ("rave", "clip-lit", "clip-lit-latent")
