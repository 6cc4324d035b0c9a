"""The shipped recipes validate (as `adapt validate` does, without data) and follow CoOp's settings;
`adapt coop-split` and `adapt bench prompts` work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "plugins" / "prompts" / "src" / "mmadapt_prompts" / "recipes"
COOP_RECIPES = sorted((SHIPPED / "coop").rglob("*.yaml"))
SHAPES_RECIPES = sorted(SHIPPED.glob("prompts-*.yaml"))

#: CoOp's per-dataset hand-written prompt (KaiyangZhou/CoOp, trainers/coop.py CUSTOM_TEMPLATES).
COOP_TEMPLATES = {
    "ImageNet": "a photo of a {}.", "Caltech101": "a photo of a {}.", "OxfordPets": "a photo of a {}, a type of pet.",
    "StanfordCars": "a photo of a {}.", "OxfordFlowers": "a photo of a {}, a type of flower.",
    "Food101": "a photo of {}, a type of food.", "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "SUN397": "a photo of a {}.", "DescribableTextures": "{} texture.", "EuroSAT": "a centered satellite photo of {}.",
    "UCF101": "a photo of a person doing {}.",
}


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", COOP_RECIPES + SHAPES_RECIPES, ids=relative)
def test_recipe_validates(path, plugin_manager, capsys):
    if path in SHAPES_RECIPES and plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    assert adapt_command(["validate", str(path)]) == 0
    protocol = "base2novel" if "base2novel" in path.parts or path in SHAPES_RECIPES else "standard"
    assert capsys.readouterr().out.strip().endswith(f"/ {protocol})")


def test_coop_recipes_cover_the_eleven_datasets_with_dassls_schedule():
    fewshot = [p for p in COOP_RECIPES if p.parent.name == "coop"]
    base2novel = [p for p in COOP_RECIPES if p.parent.name == "base2novel"]
    assert len(fewshot) == len(base2novel) == 11
    seen = set()
    for path in COOP_RECIPES:
        recipe = OmegaConf.to_container(OmegaConf.load(path))
        dataset = re.fullmatch(r"(?:\.\./)?split_zhou_(\w+)\.json", recipe["data"]["split_file"]).group(1)
        seen.add(dataset)
        assert recipe["backbone"] == {"name": "openclip", "arch": "ViT-B-16", "pretrained": "openai"}
        assert recipe["data"]["templates"] == [COOP_TEMPLATES[dataset]]
        assert recipe["data"]["shots"] == 16 and recipe["data"]["augment"] == "crop-flip"
        train = recipe["train"]
        assert {k: train[k] for k in ("batch_size", "optimizer", "lr", "momentum", "weight_decay", "warmup_epochs",
                                      "warmup_lr", "schedule", "schedule_unit")} == {
            "batch_size": 32, "optimizer": "sgd", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0005,
            "warmup_epochs": 1, "warmup_lr": 1e-5, "schedule": "cosine", "schedule_unit": "epoch"}
        assert train["epochs"] == (50 if dataset == "ImageNet" else 200)
        if path in base2novel:
            assert recipe["adapter"] == {"name": "coop", "init": "a photo of a", "class_token_position": "end"}
        else:
            assert recipe["adapter"]["n_ctx"] == 16 and recipe["adapter"]["class_token_position"] == "end"
    assert seen == set(COOP_TEMPLATES)


def test_coop_split_writes_fgvc_aircraft_and_imagenet_split_files(tmp_path, capsys, plugin_manager):
    aircraft = tmp_path / "fgvc_aircraft"
    (aircraft / "images").mkdir(parents=True)
    (aircraft / "variants.txt").write_text("707-320\nA300B4\nF/A-18\n")
    listings = {"train": ["0034309 707-320", "0034958 F/A-18"], "val": ["1 A300B4"], "test": ["2 F/A-18"]}
    for split, lines in listings.items():
        (aircraft / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    assert adapt_command(["coop-split", "fgvc-aircraft", str(aircraft)]) == 0
    written = json.loads((aircraft / "split_zhou_FGVCAircraft.json").read_text())
    assert written["train"] == [["0034309.jpg", 0, "707-320"], ["0034958.jpg", 2, "F/A-18"]]
    assert written["val"] == [["1.jpg", 1, "A300B4"]] and written["test"] == [["2.jpg", 2, "F/A-18"]]

    imagenet = tmp_path / "imagenet"
    (imagenet / "classnames.txt").parent.mkdir()
    (imagenet / "classnames.txt").write_text("n01440764 tench\nn01443537 goldfish\n")
    for split in ("train", "val"):
        for wnid in ("n01443537", "n01440764"):
            (imagenet / "images" / split / wnid).mkdir(parents=True)
            for name in ("b.JPEG", "a.JPEG"):
                (imagenet / "images" / split / wnid / name).write_bytes(b"")
    assert adapt_command(["coop-split", "imagenet", str(imagenet)]) == 0
    assert "data.root=" in capsys.readouterr().out
    written = json.loads((imagenet / "split_zhou_ImageNet.json").read_text())
    assert set(written) == {"train", "test"}
    assert written["test"][:3] == [["val/n01440764/a.JPEG", 0, "tench"], ["val/n01440764/b.JPEG", 0, "tench"],
                                   ["val/n01443537/a.JPEG", 1, "goldfish"]]
    # The builtin coop-split dataset reads it as the recipes do: root = the image folder, split file beside it.
    coop = plugin_manager.registry.get("dataset", "coop-split")
    bundle = coop.build(coop.config(root=str(imagenet / "images"), split_file="../split_zhou_ImageNet.json"))
    assert bundle.task.classnames == ["tench", "goldfish"] and bundle.task.name == "ImageNet"
    assert len(bundle.split("train")) == 4


def test_coop_split_names_the_missing_file(tmp_path, capsys):
    assert adapt_command(["coop-split", "fgvc-aircraft", str(tmp_path)]) == 2
    assert "variants.txt not found" in capsys.readouterr().err


def test_bench_prompts_times_three_steps_and_counts_their_memory(tmp_path, capsys):
    import open_clip
    from mmadapt.testing_models import tiny_openclip_config

    (tmp_path / "tiny-bench.json").write_text(json.dumps(tiny_openclip_config()))
    open_clip.add_model_config(tmp_path / "tiny-bench.json")
    assert adapt_command(["bench", "prompts", "--arch", "tiny-bench", "--classes", "5", "--batch-size", "3",
                 "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    assert "5 classes, batch 3, 16 context tokens, fp32" in out
    row = r" +(\d+\.\d+) s +(\d+\.\d+) s +(\d+\.\d+) GiB"
    assert re.search(r"reference CoOp step \(image encoder every step\) +77 x 5" + row, out)
    length = int(re.search(r"truncated \(cached image features, cut text\) +(\d+) x 5" + row, out).group(1))
    assert length < 77
    shared, own = map(int, re.search(r"truncated \+ shared prefix \(mmadapt coop\) +(\d+) \+ (\d+)" + row,
                                     out).groups()[:2])
    assert shared == 17 and 5 * 3 <= own <= 5 * (length - shared)  # SOS and 16 context tokens once
    for ratio in ("reference / ours", "truncated / ours", "reference / ours, CPU time", "reference / ours, memory",
                  "truncated / ours, memory"):
        assert re.search(f"ratio {ratio}: \\d+\\.\\d+x", out)


DOCUMENTED = [REPO / "docs" / "methods" / "coop.md", REPO / "plugins" / "prompts" / "README.md"]


def documented_recipes() -> list[tuple[str, str]]:
    """Every YAML block of the method page and the README that is a whole recipe (starts with ``name:``)."""
    return [(f"{relative(path)}#{index}", block)
            for path in DOCUMENTED
            for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", path.read_text(), re.S))
            if block.startswith("name:")]


@pytest.mark.parametrize(("where", "text"), documented_recipes(), ids=[w for w, _ in documented_recipes()])
def test_documented_recipes_validate(where, text, tmp_path, plugin_manager, capsys):
    if "shapes" in text and plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    assert adapt_command(["validate", str(path)]) == 0, where
