"""Exported class-incremental runs keep their task blocks and give the run's logits after the last task."""

from __future__ import annotations

import pytest
from mmadapt.testing import assert_export_reproduces_run, run_recipe
from test_lane_protocol import lane_recipe


@pytest.mark.parametrize("adapter", [
    {"name": "multi-lane", "num_selectors": 4, "prompt_length": 4, "prompt_layers": 2},
    {"name": "seq-prompt", "prompt_length": 4, "prompt_layers": 2},
], ids=["multi-lane", "seq-prompt"])
def test_an_exported_incremental_adapter_serves_every_task(adapter, tiny_plugin, tmp_path):
    recipe = lane_recipe()
    recipe["adapter"] = adapter
    run_recipe(recipe, tmp_path)
    loaded = assert_export_reproduces_run(tmp_path / "run", tmp_path / "export")
    assert loaded.adapter.num_tasks == 4 and loaded.adapter.task.task_sizes == [3, 3, 3, 3]
