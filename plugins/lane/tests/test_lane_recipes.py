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
    assert {"cifar100-b0-c10.yaml", "imagenet-r-b0-c20.yaml", "lane-shapes-single.yaml"} <= names
    assert "lane-shapes-single-seq-prompt.yaml" in names


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


@pytest.mark.parametrize(("name", "classes"), [("cifar100-b0-c10.yaml", 100), ("imagenet-r-b0-c20.yaml", 200)])
def test_the_single_label_paper_recipes_cut_ten_tasks(name, classes, plugin_manager):
    from mmadapt_lane.tasks import task_sizes

    recipe = check_recipe(OmegaConf.to_container(OmegaConf.load(RECIPES / "lane" / name)), name)
    assert (recipe.objective.name, recipe.protocol.name) == ("lane-ce", "class-incremental")
    assert task_sizes(recipe.protocol.config.split, classes, name) == [classes // 10] * 10


def test_the_shapes_single_label_recipe_runs_on_a_few_images(plugin_manager, tmp_path):
    recipe = OmegaConf.to_container(OmegaConf.load(RECIPES / "lane-shapes-single.yaml"))
    recipe["data"].update(train_size=40, test_size=24)
    recipe["train"].update(epochs=1, batch_size=20)
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    assert 0 <= metrics["final/acc"] <= 100 and "final/map" not in metrics
