"""A single-label class-incremental run killed during task 3 and resumed ends with the metrics of an
uninterrupted run."""

from __future__ import annotations

import json
import signal

import pytest
from mmadapt.testing import adapt_subprocess, run_recipe
from omegaconf import OmegaConf
from test_lane_single_label import single_recipe


@pytest.mark.slow
def test_a_single_label_run_killed_during_task_3_resumes_to_the_same_metrics(tiny_plugin, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(single_recipe(train={"epochs": 2, "batch_size": 8})), recipe)

    run_recipe(recipe, tmp_path / "full")
    killed = adapt_subprocess(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], tmp_path,
                              kill_in_stage="task3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "task3-epoch0001" in written and "task3-epoch0002" not in written, written

    resumed = adapt_subprocess(["run", "--resume", str(tmp_path / "killed")], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "full" / "run" / "summary.json").read_text())
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert "final/acc" in got["metrics"]
    for key in ("metrics", "steps", "params"):
        assert got[key] == expected[key], key
    assert json.loads((tmp_path / "killed" / "class_incremental.json").read_text()) == json.loads(
        (tmp_path / "full" / "run" / "class_incremental.json").read_text()
    )
