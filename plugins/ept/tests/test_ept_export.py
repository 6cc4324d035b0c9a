"""Exported EPT runs, text and visual, give the run's logits."""

from __future__ import annotations

import pytest
from mmadapt.testing import assert_export_reproduces_run, run_recipe, tiny_recipe

TRAINED = {"protocol": {"name": "standard"}, "train": {"epochs": 2, "optimizer": "adamw", "lr": 0.01}}


@pytest.mark.parametrize("adapter", [{"name": "ept", "init": "a photo of a"}, {"name": "ept-visual"}],
                         ids=["ept", "ept-visual"])
def test_an_exported_ept_gives_the_runs_logits(adapter, tiny_plugin, tmp_path):
    run_recipe(tiny_recipe(adapter=adapter, **TRAINED), tmp_path)
    assert_export_reproduces_run(tmp_path / "run", tmp_path / "export")
