"""MMRL's recipes: the ShapesWorld one fits shapes-clip and learns; the CoOp-dataset ones carry MMRL's settings."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command, assert_import_is_cheap, run_recipe, tiny_recipe_from
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "plugins" / "deep" / "src" / "mmadapt_deep" / "recipes"
PROMPTS_RECIPES = REPO / "plugins" / "prompts" / "src" / "mmadapt_prompts" / "recipes"
SHAPES = SHIPPED / "deep-shapes-mmrl.yaml"
MMRL = SHIPPED / "deep" / "mmrl"
COOP = PROMPTS_RECIPES / "coop" / "base2novel"
#: The regulariser weight per dataset in MMRL's code (yunncheng/MMRL, trainers/config.py).
OFFICIAL_WEIGHTS = {"stanford_cars": 7.0, "fgvc_aircraft": 6.0, "sun397": 6.0, "dtd": 6.0, "food101": 5.0,
                    "oxford_flowers": 4.0, "ucf101": 3.0, "imagenet": 0.5, "caltech101": 0.5, "oxford_pets": 0.2,
                    "eurosat": 0.01}


def load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path))


def test_the_plugin_module_does_not_import_torch():
    assert_import_is_cheap("mmadapt_deep.plugin")


def test_the_shapes_recipe_validates_and_its_layers_fit_shapes_clip(plugin_manager, capsys):
    registry = plugin_manager.registry
    if registry.find("backbone", "shapes-clip") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(SHAPES)]) == 0
    assert capsys.readouterr().out.strip().endswith("(shapes-clip / shapes / mmrl / base2novel)")
    from mmadapt import Task

    recipe = load(SHAPES)
    backbone_section = {key: value for key, value in recipe["backbone"].items() if key != "name"}
    shapes_clip = registry.get("backbone", "shapes-clip")
    backbone = shapes_clip.build(shapes_clip.config(**backbone_section))
    assert (backbone.image.depth, backbone.text.depth) == (4, 3)  # what the recipe's comment states
    options = {key: value for key, value in recipe["adapter"].items() if key != "name"}
    adapter = registry.get("adapter", "mmrl")
    built = adapter.build(adapter.config(**options), backbone, Task(["circle", "square"]))
    assert built.image_blocks == [2, 3] and built.text_blocks == [1, 2]


def test_a_base_to_novel_run_of_the_recipe_learns_the_base_classes(tmp_path, tiny_plugin):
    # The recipe's method on the tiny CLIP (2 blocks per tower: the tokens go into the second), with a
    # step size that moves the tiny model within 3 epochs.
    recipe = tiny_recipe_from(SHAPES, adapter={"layers": [2, 2], "text_layers": [2, 2]},
                              train={"epochs": 3, "batch_size": 8, "lr": 0.01, "warmup_epochs": 0},
                              protocol={"evaluate_initial": True})
    metrics = run_recipe(recipe, tmp_path / "out")["metrics"]
    # The random tiny CLIP starts near chance on the 2 base classes and learns them.
    assert metrics["initial/base/accuracy"] <= 62.5
    assert metrics["base/accuracy"] >= max(90.0, metrics["initial/base/accuracy"] + 25.0)
    assert all(0.0 <= metrics[f"{split}/accuracy"] <= 100.0 for split in ("new", "hm"))


BASE_TO_NOVEL = sorted((MMRL / "base2novel").glob("*.yaml"))


def test_base_to_novel_recipes_cover_the_eleven_coop_datasets_with_mmrls_settings():
    assert [p.name for p in BASE_TO_NOVEL] == sorted(p.name for p in COOP.glob("*.yaml"))
    assert len(BASE_TO_NOVEL) == 11
    for path in BASE_TO_NOVEL:
        recipe, dataset = load(path), path.stem
        assert recipe["data"] == load(COOP / path.name)["data"], f"{path.name}: not CoOp's data"
        assert recipe["objective"] == {"name": "mmrl", "class_weight": 0.7, "weight": OFFICIAL_WEIGHTS[dataset]}
        assert recipe["adapter"] == {"name": "mmrl", "n_tokens": 5, "dimension": 2048 if dataset == "eurosat" else 512,
                                     "layers": [6, 12], "fusion_weight": 0.7}
        assert recipe["protocol"] == {"name": "base2novel"}
        train = recipe["train"]
        expected = (5, 32) if dataset == "imagenet" else (10, 4)
        assert (train["epochs"], train["batch_size"]) == expected, path.name
        schedule = (train["optimizer"], train["lr"], train["warmup_epochs"], train["warmup_lr"])
        assert schedule == ("adamw", 0.001, 1, 1e-5), path.name


@pytest.mark.parametrize("path", [*BASE_TO_NOVEL, MMRL / "cross_dataset" / "imagenet.yaml"], ids=lambda p: p.stem)
def test_real_data_recipe_validates(path, plugin_manager):
    assert adapt_command(["validate", str(path)]) == 0


def test_the_cross_dataset_recipe_names_an_evaluation_of_each_other_dataset_that_validates(plugin_manager, capsys):
    source = MMRL / "cross_dataset" / "imagenet.yaml"
    recipe = load(source)
    assert recipe["objective"] == {"name": "mmrl", "class_weight": 0.7, "weight": 0.2}
    assert (recipe["train"]["epochs"], recipe["train"]["batch_size"], recipe["protocol"]["name"]) == (1, 32, "standard")
    commands = [shlex.split(line.removeprefix("#").strip()) for line in source.read_text().splitlines()
                if line.startswith("#   adapt eval RUN_DIR ")]
    targets = sorted(p for p in COOP.glob("*.yaml") if p.stem != "imagenet")
    assert len(commands) == len(targets) == 10
    for command, target in zip(commands, targets):
        overrides = command[3:]
        data = load(target)["data"]
        assert overrides == [f"data.root=$DATA/{data['root'].removeprefix('data/')}",
                             f"data.split_file={data['split_file']}", f'data.templates=["{data["templates"][0]}"]']
        assert adapt_command(["validate", str(source), *overrides]) == 0, target.name
