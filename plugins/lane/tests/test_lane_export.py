"""Exported class-incremental runs keep their task blocks and give the run's logits after the last task."""

from __future__ import annotations

import pytest
from mmadapt.testing import assert_export_reproduces_run, run_recipe

RECIPE = {
    "name": "lane-tiny",
    "seed": 1,
    "backbone": {"name": "tiny-clip"},
    "data": {"name": "shapes", "task": "multilabel", "train_size": 48, "test_size": 32, "image_size": 32},
    "adapter": {"name": "multi-lane", "num_selectors": 4, "prompt_length": 4, "prompt_layers": 2},
    "objective": {"name": "lane-bce"},
    "protocol": {"name": "class-incremental", "split": "B0-C3"},
    "train": {"epochs": 1, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "weight_decay": 0, "precision": "fp32"},
}


@pytest.mark.parametrize("adapter", [
    {"name": "multi-lane", "num_selectors": 4, "prompt_length": 4, "prompt_layers": 2},
    {"name": "seq-prompt", "prompt_length": 4, "prompt_layers": 2},
], ids=["multi-lane", "seq-prompt"])
def test_an_exported_incremental_adapter_serves_every_task(adapter, tiny_plugin, tmp_path):
    run_recipe({**RECIPE, "adapter": adapter}, tmp_path)
    loaded = assert_export_reproduces_run(tmp_path / "run", tmp_path / "export")
    assert loaded.adapter.num_tasks == 4 and loaded.adapter.task.task_sizes == [3, 3, 3, 3]
