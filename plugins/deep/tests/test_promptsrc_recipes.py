"""PromptSRC's recipes validate and carry the paper's settings; the ShapesWorld recipe's method runs on the
tiny components; prompts trained on one dataset evaluate on another one's classes (cross-dataset)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command, run_recipe, tiny_recipe_from
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "plugins" / "deep" / "src" / "mmadapt_deep" / "recipes"
SHAPES_RECIPE = SHIPPED / "deep-shapes-promptsrc.yaml"
BASE2NOVEL = sorted((SHIPPED / "deep" / "promptsrc" / "base2novel").glob("*.yaml"))
CROSS_DATASET = sorted((SHIPPED / "deep" / "promptsrc" / "cross_dataset").glob("*.yaml"))
DATASETS = {"ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "FGVCAircraft",
            "SUN397", "DescribableTextures", "EuroSAT", "UCF101"}
#: PromptSRC's schedule (configs/trainers/PromptSRC/*.yaml of its code).
SCHEDULE = {"epochs": 20, "batch_size": 4, "optimizer": "sgd", "lr": 0.0025, "momentum": 0.9, "weight_decay": 0.0005,
            "schedule": "cosine", "warmup_epochs": 1, "warmup_lr": 1e-5}
OBJECTIVE = {"name": "promptsrc", "text_weight": 25, "image_weight": 10, "logits_weight": 1}


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path))


@pytest.mark.parametrize("path", [SHAPES_RECIPE, *BASE2NOVEL, *CROSS_DATASET], ids=relative)
def test_recipe_validates(path, plugin_manager, capsys):
    if path == SHAPES_RECIPE and plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(path)]) == 0
    protocol = "standard" if path in CROSS_DATASET else "base2novel"
    assert capsys.readouterr().out.strip().endswith(f"/ promptsrc / {protocol})")


def test_the_coop_datasets_have_the_papers_base_to_novel_and_cross_dataset_settings():
    seen = set()
    for path in BASE2NOVEL:
        recipe = load(path)
        seen.add(re.fullmatch(r"(?:\.\./)?split_zhou_(\w+)\.json", recipe["data"]["split_file"]).group(1))
        assert recipe["backbone"] == {"name": "openclip", "arch": "ViT-B-16", "pretrained": "openai"}
        assert recipe["data"]["shots"] == 16 and recipe["data"]["augment"] == "crop-flip"
        assert recipe["adapter"] == {"name": "promptsrc", "n_text": 4, "n_visual": 4, "depth": 9,
                                     "init": "a photo of a", "gpa_mean": 15, "gpa_std": 1}
        assert recipe["objective"] == OBJECTIVE
        assert {key: recipe["train"][key] for key in SCHEDULE} == SCHEDULE
        assert recipe["train"]["schedule_unit"] == "epoch"
    assert seen == DATASETS and len(BASE2NOVEL) == 11

    [source] = CROSS_DATASET
    recipe = load(source)
    assert recipe["data"]["split_file"].endswith("split_zhou_ImageNet.json") and recipe["data"]["shots"] == 16
    assert recipe["adapter"] == {"name": "promptsrc", "n_text": 4, "n_visual": 4, "depth": 3,
                                 "init": "a photo of a", "gpa_mean": 6, "gpa_std": 10}
    assert recipe["objective"] == OBJECTIVE and {key: recipe["train"][key] for key in SCHEDULE} == SCHEDULE
    # Its header evaluates on every other dataset.
    targets = set(re.findall(r"split_zhou_(\w+)\.json", source.read_text())) - {"ImageNet"}
    assert targets == DATASETS - {"ImageNet"}


def test_the_shapes_recipe_is_papers_method_at_shapes_clips_depth():
    recipe = load(SHAPES_RECIPE)
    assert recipe["adapter"]["depth"] == 3  # shapes-clip: 3 text blocks, 4 image blocks
    assert {key: recipe["train"][key] for key in SCHEDULE} == SCHEDULE and recipe["objective"] == OBJECTIVE
    assert recipe["data"]["task"] == "shape-upside-down" and recipe["protocol"] == {"name": "base2novel"}


@pytest.mark.slow
def test_the_shapes_recipes_method_runs_and_its_prompts_evaluate_on_other_classes(tiny_plugin, tmp_path):
    # The tiny CLIP has 2 blocks per tower; two epochs keep the test short.
    recipe = tiny_recipe_from(SHAPES_RECIPE, adapter={"depth": 2, "gpa_mean": 2}, protocol={"name": "standard"},
                              train={"epochs": 2, "batch_size": 8}, data={"shots": 4})
    summary = run_recipe(recipe, tmp_path)
    assert summary["steps"] == 2 * 2 and 0 <= summary["metrics"]["test/accuracy"] <= 100
    # Cross-dataset: the prompts trained on 4 classes evaluate on 6 (adapt eval with the other data).
    assert adapt_command(["eval", str(tmp_path / "run"), "data.n_classes=6"]) == 0
    [evaluation] = (tmp_path / "run" / "evals").iterdir()
    assert "test/accuracy" in json.loads((evaluation / "summary.json").read_text())["metrics"]
    assert OmegaConf.load(evaluation / "resolved.yaml").data.n_classes == 6
