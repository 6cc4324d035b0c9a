"""The shipped deep-prompt recipes validate (as `adapt validate` does, without data) and follow the papers' settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "plugins" / "deep" / "src" / "mmadapt_deep" / "recipes"
PAPER_RECIPES = sorted((SHIPPED / "deep").rglob("*.yaml"))
SHAPES_RECIPES = sorted(SHIPPED.glob("deep-shapes-*.yaml"))
#: The eleven CoOp datasets, by the name in their split files.
DATASETS = {"ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "FGVCAircraft",
            "SUN397", "DescribableTextures", "EuroSAT", "UCF101"}
#: shapes-clip's text tower has 3 blocks and its image tower 4.
SHAPES_CLIP_DEPTH = 3


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def load(path: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path))


@pytest.mark.parametrize("path", PAPER_RECIPES + SHAPES_RECIPES, ids=relative)
def test_recipe_validates(path, plugin_manager, capsys):
    if path in SHAPES_RECIPES and plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(path)]) == 0
    protocol = "standard" if any(part.startswith("cross") for part in path.parts) else "base2novel"
    assert capsys.readouterr().out.strip().endswith(f"/ {protocol})")


@pytest.mark.parametrize("method", ["ivlp", "maple"])
def test_paper_recipes_cover_the_eleven_datasets_with_maples_settings(method):
    base2novel = sorted((SHIPPED / "deep" / method / "base2novel").glob("*.yaml"))
    seen = set()
    for path in base2novel:
        recipe = load(path)
        seen.add(re.fullmatch(r"(?:\.\./)?split_zhou_(\w+)\.json", recipe["data"]["split_file"]).group(1))
        assert recipe["backbone"] == {"name": "openclip", "arch": "ViT-B-16", "pretrained": "openai"}
        assert recipe["data"]["shots"] == 16 and recipe["data"]["augment"] == "crop-flip"
        train = recipe["train"]
        assert {k: train[k] for k in ("epochs", "batch_size", "optimizer", "lr", "warmup_epochs", "warmup_lr",
                                      "schedule")} == {
            "epochs": 5, "batch_size": 4, "optimizer": "sgd", "lr": 0.0035, "warmup_epochs": 1, "warmup_lr": 1e-5,
            "schedule": "cosine"}
        adapter = recipe["adapter"]
        assert adapter["name"] == method and adapter["depth"] == 9 and adapter["init"] == "a photo of a"
        assert adapter.get("n_ctx", adapter.get("n_text")) == 2
    assert seen == DATASETS
    cross = load(SHIPPED / "deep" / method / "cross_dataset" / "imagenet.yaml")
    assert cross["data"]["split_file"].endswith("split_zhou_ImageNet.json") and "num_base" not in cross["data"]
    assert cross["adapter"]["depth"] == 3 and cross["train"]["epochs"] == 2 and cross["train"]["lr"] == 0.0026


@pytest.mark.parametrize("path", [p for p in SHAPES_RECIPES if "depth" in load(p)["adapter"]], ids=relative)
def test_shapes_recipes_prompt_at_most_the_towers_depth_and_say_so(path):
    recipe = load(path)
    assert recipe["adapter"]["depth"] <= SHAPES_CLIP_DEPTH
    assert recipe["protocol"]["name"] == "base2novel" and recipe["data"]["task"] == "shape-upside-down"
    assert "3 text blocks" in path.read_text()
