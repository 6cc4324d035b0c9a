"""A test plugin for subprocess runs: ``KILL_IN_STAGE=S`` SIGKILLs the run at its first step after stage S
wrote a checkpoint, like a crash in the middle of that stage."""

from __future__ import annotations

import os
import signal

from mmadapt import hookimpl


@hookimpl
def on_step_end(run, step, logs):
    """Kill the process once a checkpoint of stage ``KILL_IN_STAGE`` exists."""
    stage = os.environ.get("KILL_IN_STAGE")
    if stage and any((run.folder / "checkpoints").glob(f"{stage}-epoch*/adapter.safetensors")):
        os.kill(os.getpid(), signal.SIGKILL)
