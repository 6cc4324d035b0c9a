"""A test plugin for subprocess runs: SIGKILL the process, like a crash, once a named checkpoint exists.

``KILL_AFTER=<checkpoint folder>`` kills at the first logged step after that folder was written.
"""

from __future__ import annotations

import os
import signal

from mmadapt import hookimpl


@hookimpl
def on_step_end(run, step, logs):
    """Kill this process once the checkpoint folder named by ``KILL_AFTER`` exists."""
    folder = os.environ.get("KILL_AFTER")
    if folder and (run.folder / "checkpoints" / folder / "checkpoint.json").is_file():
        os.kill(os.getpid(), signal.SIGKILL)
