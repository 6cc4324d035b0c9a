"""The bundled lane recipes validate, and the ShapesWorld ones run end to end on a few images."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmadapt.testing import check_recipe, run_recipe
from omegaconf import OmegaConf

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_lane" / "recipes"
FILES = sorted(RECIPES.glob("lane/*.yaml")) + sorted(RECIPES.glob("lane-shapes*.yaml"))


def test_every_recipe_is_found():
    names = {p.name for p in FILES}
    assert {"coco-b0-c10.yaml", "coco-b40-c10.yaml", "voc-b0-c4.yaml", "voc-b10-c2.yaml", "lane-shapes.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_recipe_validates_with_zero_weight_decay(path, plugin_manager):
    recipe = check_recipe(OmegaConf.to_container(OmegaConf.load(path)), str(path))
    assert recipe.train.weight_decay == 0 and recipe.train.clip_grad_norm is None


def test_the_shapes_recipe_runs_on_a_few_images(plugin_manager, tmp_path):
    recipe = OmegaConf.to_container(OmegaConf.load(RECIPES / "lane-shapes.yaml"))
    recipe["data"].update(train_size=40, test_size=24)
    recipe["train"].update(epochs=1, batch_size=20)
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    assert 0 < metrics["final/map"] <= 100
