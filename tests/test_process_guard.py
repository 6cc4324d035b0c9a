"""Processes out of step fail loudly: a collective call made on one process only raises in every process
(naming each one's call), and a stalled process prints its stacks and exits (the stall watchdog)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmadapt.processes import WATCHDOG_VARIABLE, feed_watchdog, in_step
from mmadapt.testing import tiny_recipe
from omegaconf import OmegaConf
from plugin_dists import run_adapt

TWO_PROCESSES = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--tee", "3"]
needs_processes = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")


def test_in_one_process_the_checks_do_nothing(monkeypatch):
    monkeypatch.delenv(WATCHDOG_VARIABLE, raising=False)
    in_step("Run.features('anything')", num_processes=1)
    feed_watchdog()


@pytest.mark.slow
@needs_processes
def test_a_pass_on_the_main_process_only_raises_in_every_process_instead_of_hanging(env_dir, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(tiny_recipe(protocol={"name": "main-only-pass"})), recipe)
    started = time.monotonic()
    result = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "run")], path=env_dir,
                       launcher=TWO_PROCESSES, env={"OMP_NUM_THREADS": "1", WATCHDOG_VARIABLE: "120"})
    assert result.returncode != 0
    assert time.monotonic() - started < 120  # the error, not the watchdog, ended it
    for rank in (0, 1):
        assert any(line.startswith(f"[default{rank}]") and "CollectiveOutOfStepError" in line
                   for line in result.stderr.splitlines()), result.stderr[-3000:]
    assert "process 0 is in Run.features('main only'); process 1 is in Run.summary()" in result.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.slow
@needs_processes
def test_a_stalled_process_prints_the_stacks_of_every_process_and_the_launch_ends(tmp_path):
    script = tmp_path / "stall.py"
    script.write_text(textwrap.dedent("""
        import time

        from mmadapt.processes import feed_watchdog, process_state, wait_for_everyone


        def stalled_in_a_long_computation():
            time.sleep(300)


        state = process_state()
        feed_watchdog()
        if state.process_index == 1:
            stalled_in_a_long_computation()
        wait_for_everyone("the end of the script")
    """))
    started = time.monotonic()
    result = subprocess.run([*TWO_PROCESSES, str(script)], capture_output=True, text=True, timeout=240,
                            env={**_environment(), WATCHDOG_VARIABLE: "5"})
    assert result.returncode != 0
    assert time.monotonic() - started < 200
    output = result.stdout + result.stderr
    assert "Timeout (0:00:05)!" in output
    assert "stalled_in_a_long_computation" in output  # process 1's stack
    assert "in_step" in output  # process 0's stack: waiting in the collective


def _environment() -> dict[str, str]:
    import os

    return dict(os.environ, OMP_NUM_THREADS="1")
