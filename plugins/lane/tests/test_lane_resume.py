"""A class-incremental run killed during task 3 and resumed ends with the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mmadapt.testing import run_recipe
from omegaconf import OmegaConf
from test_lane_protocol import lane_recipe

TESTS = Path(__file__).parent


def entry_point_dist(root: Path, dist: str, name: str, target: str) -> None:
    """A ``dist-info`` with one ``mmadapt`` entry point ``name = target``."""
    info = root / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[mmadapt]\n{name} = {target}\n")


def adapt(args, site: Path, **env):
    path = os.pathsep.join([str(site), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "mmadapt", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", **env},
    )


@pytest.mark.slow
def test_a_run_killed_during_task_3_resumes_to_the_same_metrics(tiny_plugin, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    entry_point_dist(site, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
    entry_point_dist(site, "mmadapt-testing-lane-killer", "lane_killer", "lane_killer")
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(lane_recipe(train={"epochs": 2, "batch_size": 16})), recipe)

    run_recipe(recipe, tmp_path / "full")  # uninterrupted, in this process
    killed = adapt(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], site, KILL_IN_STAGE="task3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "task3-epoch0001" in written and "task3-epoch0002" not in written, written
    assert not any(name.startswith("task4") for name in written)

    resumed = adapt(["run", "--resume", str(tmp_path / "killed")], site)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "full" / "run" / "summary.json").read_text())
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert got[key] == expected[key], key
    assert json.loads((tmp_path / "killed" / "class_incremental.json").read_text()) == json.loads(
        (tmp_path / "full" / "run" / "class_incremental.json").read_text()
    )
