"""An exported KAPT run carries its class descriptions: it loads without the image folder or the knowledge file."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from mmadapt import UserError, load_adapter
from mmadapt.testing import assert_export_reproduces_run, run_recipe, tiny_recipe
from test_kapt_reload import KNOWLEDGE, colour_folder


def test_an_exported_kapt_needs_neither_its_data_nor_its_knowledge_file(tiny_plugin, tmp_path):
    knowledge = tmp_path / "colours.json"
    knowledge.write_text(json.dumps(KNOWLEDGE))
    root = colour_folder(tmp_path / "data")
    recipe = tiny_recipe(data={"name": "imagefolder", "root": str(root), "knowledge_file": str(knowledge)},
                         adapter={"name": "kapt"}, protocol={"name": "standard"}, train={"epochs": 1, "batch_size": 8})
    run_recipe(recipe, tmp_path / "out")
    loaded = assert_export_reproduces_run(tmp_path / "out" / "run", tmp_path / "export")
    images = torch.zeros(2, 3, 32, 32)
    expected = loaded.logits(images)
    shutil.rmtree(root)
    knowledge.unlink()
    again = load_adapter(tmp_path / "export")
    assert again.adapter.task.knowledge == KNOWLEDGE
    torch.testing.assert_close(again.logits(images), expected, atol=0, rtol=0)
    with pytest.raises(UserError, match="description"):
        again.set_classnames(["purple"])
    again.set_classnames(["purple"], knowledge={"purple": "plums and violets"})
    assert again.classify(images) == ["purple", "purple"]
