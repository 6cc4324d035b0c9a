"""A KAPT run on an image folder with a knowledge file reloads: ``mmadapt.load_run`` and ``adapt eval``."""

from __future__ import annotations

import json

import pytest
import torch
from mmadapt import load_run
from mmadapt.testing import adapt_command, make_batch, run_recipe, tiny_recipe

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 40)}
KNOWLEDGE = {"red": "fire and blood", "green": "grass and leaves", "blue": "sky and sea",
             "yellow": "lemons and bananas"}


def colour_folder(root):
    """``root/{train,test}/<colour>/<i>.png``: plain squares; the folder names the classes, nothing describes them."""
    from PIL import Image

    for split, count in (("train", 4), ("test", 2)):
        for name, colour in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (32, 32), colour).save(root / split / name / f"{i}.png")
    return root


def test_a_kapt_run_with_a_knowledge_file_reloads_with_load_run_and_adapt_eval(tiny_plugin, tmp_path):
    knowledge = tmp_path / "colours.json"
    knowledge.write_text(json.dumps(KNOWLEDGE))
    root = colour_folder(tmp_path / "data")
    recipe = tiny_recipe(data={"name": "imagefolder", "root": str(root), "knowledge_file": str(knowledge)},
                         adapter={"name": "kapt"}, protocol={"name": "standard"},
                         train={"epochs": 1, "batch_size": 8})
    summary = run_recipe(recipe, tmp_path / "out")
    run_dir = tmp_path / "out" / "run"

    finished = load_run(run_dir)
    assert finished.checkpoint is not None
    assert sorted(finished.adapter.task.knowledge) == sorted(KNOWLEDGE)
    test = finished.recipe.data.build().split("test")
    batch = make_batch(test, finished.backbone, size=8, task=finished.adapter.task)
    with torch.no_grad():
        logits = finished.adapter(batch)["logits"]
    accuracy = 100.0 * float((logits.argmax(dim=-1) == batch["label"]).float().mean())
    assert logits.shape == (8, 4)  # the whole test split: 2 images of each of 4 colours
    assert accuracy == pytest.approx(summary["metrics"]["test/accuracy"])

    assert adapt_command(["eval", str(run_dir)]) == 0
    evaluated = json.loads(next((run_dir / "evals").glob("*/summary.json")).read_text())
    assert evaluated["metrics"] == summary["metrics"]
