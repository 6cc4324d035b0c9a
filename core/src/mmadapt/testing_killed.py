"""Killed runs for resume tests: ``adapt`` in a fresh process that SIGKILLs itself mid-stage, as a crash would.

This module is also the plugin such a process loads (through an entry point written next to it): with
``KILL_IN_STAGE=S`` in the environment it kills the process at the first logged step after stage ``S``
wrote a checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .hookspecs import hookimpl


@hookimpl
def on_step_end(run, step, logs):
    """Kill the process once a checkpoint of stage ``KILL_IN_STAGE`` exists."""
    stage = os.environ.get("KILL_IN_STAGE")
    if stage and any((run.folder / "checkpoints").glob(f"{stage}-epoch*/adapter.safetensors")):
        os.kill(os.getpid(), signal.SIGKILL)


def adapt_subprocess(args: list[str], folder: str | Path, *, kill_in_stage: str | None = None,
                     timeout: float = 600) -> subprocess.CompletedProcess:
    """``adapt ARGS`` in a fresh process that has the tiny test components and this killer as plugins.

    The entry points go to ``folder/site``. With ``kill_in_stage`` the process SIGKILLs itself at its
    first logged step after that stage wrote a checkpoint (its return code is then ``-SIGKILL``).
    """
    site = Path(folder) / "site"
    _entry_point_dist(site, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
    _entry_point_dist(site, "mmadapt-testing-killer", "killer", __name__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("KILL_IN_STAGE", None)
    if kill_in_stage:
        env["KILL_IN_STAGE"] = kill_in_stage
    return subprocess.run([sys.executable, "-m", "mmadapt", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _entry_point_dist(site: Path, dist: str, name: str, target: str) -> None:
    """A ``dist-info`` in ``site`` with one ``mmadapt`` entry point ``name = target``."""
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[mmadapt]\n{name} = {target}\n")
