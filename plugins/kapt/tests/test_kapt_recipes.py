"""The shipped recipes validate; a kapt recipe runs base-to-novel with a knowledge file; the plugin imports cheaply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command, assert_import_is_cheap, run_recipe, tiny_recipe_from

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "plugins" / "kapt" / "src" / "mmadapt_kapt" / "recipes"
RECIPES = sorted(SHIPPED.glob("kapt-shapes*.yaml"))


def test_the_plugin_module_does_not_import_torch():
    assert_import_is_cheap("mmadapt_kapt.plugin")


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(path, plugin_manager, capsys):
    if plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith("/ kapt / base2novel)")


def test_a_base_to_novel_run_learns_and_uses_the_knowledge_file_for_novel_classes(tmp_path, tiny_plugin):
    knowledge = tmp_path / "colours.json"
    knowledge.write_text(json.dumps({"Red": "fire and blood", "green": "grass and leaves", "blue": "sky and sea",
                                     "YELLOW": "lemons and bananas"}))
    # The recipe's method with a step size that moves the tiny model within 3 epochs (the recipe's
    # lr 0.002 after a warm-up epoch leaves it where it started).
    train = {"epochs": 3, "batch_size": 8, "lr": 0.05, "warmup_epochs": 0}
    recipe = tiny_recipe_from(SHIPPED / "kapt-shapes.yaml", data={"knowledge_file": str(knowledge)},
                              train=train, protocol={"evaluate_initial": True})
    metrics = run_recipe(recipe, tmp_path / "out")["metrics"]
    # The random tiny CLIP starts at chance on the 2 base classes (measured: 50%) and learns them (100%).
    assert metrics["initial/base/accuracy"] <= 62.5
    assert metrics["base/accuracy"] >= max(90.0, metrics["initial/base/accuracy"] + 25.0)
    # The new classes are evaluated: their prompts came from the file's descriptions, seen in no training step.
    assert all(0.0 <= metrics[f"{split}/accuracy"] <= 100.0 for split in ("new", "hm"))  # percent


def test_a_run_without_an_entry_for_a_novel_class_exits_2(tmp_path, tiny_plugin, capsys):
    knowledge = tmp_path / "colours.yaml"
    knowledge.write_text("red: fire\ngreen: grass\n")
    recipe = tiny_recipe_from(SHIPPED / "kapt-shapes.yaml", data={"knowledge_file": str(knowledge)},
                              train={"epochs": 1})
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps(recipe))
    assert adapt_command(["run", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(knowledge) in err and "blue, yellow" in err and "add an entry" in err


REAL = sorted((SHIPPED / "kapt").glob("*.yaml"))


def test_real_data_recipes_cover_the_eleven_coop_datasets_with_a_knowledge_file_each():
    from omegaconf import OmegaConf

    coop_recipes = REPO / "plugins" / "prompts" / "src" / "mmadapt_prompts" / "recipes" / "coop" / "base2novel"
    coop = sorted(p.name for p in coop_recipes.glob("*.yaml"))
    assert [p.name for p in REAL] == coop and len(REAL) == 11
    for path in REAL:
        recipe = OmegaConf.to_container(OmegaConf.load(path))
        assert recipe["data"]["knowledge_file"] == f"knowledge/{path.stem}.yaml"
        assert recipe["adapter"] == {"name": "kapt"} and recipe["protocol"] == {"name": "base2novel"}
        assert recipe["train"]["epochs"] == 10 and recipe["data"]["shots"] == 16


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_data_recipe_validates(path, plugin_manager):
    assert adapt_command(["validate", str(path)]) == 0
