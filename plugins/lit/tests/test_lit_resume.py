"""A clip-lit run killed inside an enhancement round resumes to the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lit_testing import shapes_recipe
from mmadapt.testing import run_recipe
from omegaconf import OmegaConf


def killer_site(root: Path) -> Path:
    """A folder for PYTHONPATH whose dist-info makes ``lit_killer`` an mmadapt plugin."""
    site = root / "site"
    info = site / "mmadapt_testing_lit_killer-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mmadapt-testing-lit-killer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mmadapt]\nkiller = lit_killer\n")
    return site


def adapt(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(site), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    full_env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "mmadapt", *args], capture_output=True, text=True, env=full_env, timeout=600
    )


@pytest.mark.slow
def test_a_run_killed_in_an_enhancement_round_resumes_to_the_same_metrics(tmp_path):
    # 24 training pairs in batches of 4: 6 steps an epoch, so round 1's 12 enhancement steps take 2 epochs.
    recipe = shapes_recipe(
        {"name": "clip-lit-latent"},
        {
            "name": "clip-lit",
            "prompt_init_iterations": 3,
            "prompt_init_batch_size": 16,
            "rounds": 1,
            "enhance_iterations": 12,
            "prompt_iterations": 2,
            "prompt_batch_size": 8,
            "grid_images": 1,
        },
    )
    recipe_file = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(recipe), recipe_file)
    site = killer_site(tmp_path)
    expected = run_recipe(recipe, tmp_path / "full")  # uninterrupted, in this process (one thread too)

    killed = adapt(
        ["run", str(recipe_file), "--output-dir", str(tmp_path / "killed")], site, KILL_AFTER="round1-enhance-epoch0001"
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "round1-enhance-epoch0001" in written and "round1-enhance-epoch0002" not in written

    resumed = adapt(["run", "--resume", str(tmp_path / "killed")], site)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert got["steps"] == expected["steps"]
    assert got["metrics"] == expected["metrics"]
