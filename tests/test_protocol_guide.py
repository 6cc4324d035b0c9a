"""docs/protocols.md: the two-stage protocol example runs as written and resumes its state."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import runtime_plugin
from mmadapt.testing import run_recipe, tiny_recipe

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "protocols.md"


def example_module(monkeypatch) -> types.ModuleType:
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "docs/protocols.md should hold exactly one Python example"
    module = types.ModuleType("mmadapt_two_stage")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
    exec(compile(blocks[0], str(GUIDE), "exec"), module.__dict__)
    return module


def test_the_two_stage_example_trains_both_stages(tiny_plugin, register_plugin, tmp_path, monkeypatch):
    register_plugin(runtime_plugin, "mmadapt-testing-runtime")
    register_plugin(example_module(monkeypatch), "mmadapt-two-stage")
    recipe = tiny_recipe(adapter={"name": "two-groups"},
                         protocol={"name": "two-stage", "warmup_groups": ["a"], "warmup_iterations": 5},
                         train={"epochs": 2, "batch_size": 8, "optimizer": "sgd", "lr": 0.05, "log_every": 1})
    summary = run_recipe(recipe, tmp_path)
    assert summary["steps"] == 5 + 2 * 8  # 64 training images in batches of 8
    assert {"warmup/accuracy", "test/accuracy"} <= set(summary["metrics"])
    assert (tmp_path / "run" / "warmup.json").is_file()
    assert summary["metrics"]["test/accuracy"] > 50  # 4 colours: chance is 25
    checkpoints = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert {"warmup-epoch0001", "main-epoch0002"} <= checkpoints
