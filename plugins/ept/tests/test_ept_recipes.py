"""The plugin's recipes: every one validates, and each ShapesWorld method runs on the tiny components
(base-to-novel, a few epochs) with the parameter breakdown in its summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command, run_recipe, tiny_recipe_from

REPO = Path(__file__).resolve().parents[3]
RECIPES = REPO / "plugins" / "ept" / "src" / "mmadapt_ept" / "recipes"
ALL = sorted([*RECIPES.glob("ept-shapes*.yaml"), *(RECIPES / "ept").glob("*.yaml")])
SHAPES = sorted(RECIPES.glob("ept-shapes*.yaml"))
DOCUMENTED = [REPO / "docs" / "methods" / "ept.md", REPO / "plugins" / "ept" / "README.md"]
BLOCKS = [(f"{path.parent.name}/{path.name}#{index}", block)
          for path in DOCUMENTED
          for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S))
          if block.startswith("name:")]


def test_the_recipe_set_is_complete():
    assert len(list((RECIPES / "ept").glob("*.yaml"))) == 11  # CoOp's 11 datasets
    assert {p.stem for p in SHAPES} == {"ept-shapes"} | {
        f"ept-shapes-{variant}-{method}" for variant in ("text", "visual") for method in ("vanilla", "dept", "ept")
    }


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_recipe_validates(path, plugin_manager, capsys):
    if "shapes" in path.stem and plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(path)]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("path", SHAPES, ids=[p.stem for p in SHAPES])
def test_shapes_method_runs_on_the_tiny_components(path, plugin_manager, tiny_plugin, tmp_path):
    summary = run_recipe(tiny_recipe_from(path, train={"epochs": 2}, eval={"batch_size": 64}), tmp_path)
    assert {"base/accuracy", "new/accuracy", "hm/accuracy"} <= set(summary["metrics"])
    params = summary["params"]
    assert params["trainable"] == params["decomposed_budget"] + params["ept_extras"] + params.get("head", 0)


def test_the_docs_show_recipes():
    assert BLOCKS


@pytest.mark.parametrize(("where", "text"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_documented_recipe_validates(where, text, tmp_path, plugin_manager, capsys):
    if plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    assert adapt_command(["validate", str(path)]) == 0, where
