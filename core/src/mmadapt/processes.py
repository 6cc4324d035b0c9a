"""The processes of a run: Accelerate's per-process state, set up the way the engine's Accelerator is;
the check that keeps them in step at collective calls, and the stall watchdog that reports a hang."""

from __future__ import annotations

import faulthandler
import functools
import os
import signal
import sys
from typing import Any

#: Environment variable: seconds without progress after which every process prints its stacks and exits.
WATCHDOG_VARIABLE = "MMADAPT_WATCHDOG_S"


class CollectiveOutOfStepError(RuntimeError):
    """The processes of a data-parallel run reached different collective calls; raised in every process
    instead of the hang that would follow."""


def cpu_only() -> bool:
    """Whether this machine trains on the CPU (no CUDA or MPS device)."""
    import torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def process_state() -> Any:
    """Accelerate's ``PartialState``. Multi-process CPU runs (gloo) are set up only when the state is
    created with ``cpu=True``, so every caller before the Accelerator must pass the same flag."""
    from accelerate import PartialState

    return PartialState(cpu=cpu_only())


def is_main_process() -> bool:
    """Whether this process writes files and prints."""
    return process_state().is_main_process


def in_step(call: str, num_processes: int | None = None) -> None:
    """Wait until every process reaches a collective call, and check that it is the same one, ``call``.

    In a data-parallel run the processes exchange the names of the calls they entered (one small
    gather, also a barrier); when they differ, every process raises :class:`CollectiveOutOfStepError`
    naming each process's call, where they would otherwise wait for each other for good. Nothing
    happens in one process.
    """
    if num_processes is None:
        num_processes = process_state().num_processes
    feed_watchdog()
    if num_processes == 1:
        return
    from accelerate.utils import gather_object

    calls = gather_object([call])
    if len(set(calls)) > 1:
        where = "; ".join(f"process {rank} is in {name}" for rank, name in enumerate(calls))
        raise CollectiveOutOfStepError(
            f"the processes of this data-parallel run are out of step at a collective call: {where}. "
            "Every process must call Run.fit, Run.evaluate, Run.features and Run.summary, in the same order: "
            "code under `if run.is_main:` and lifecycle hooks (they run on the main process only) must not "
            "call them. Compute on every process and write with run.save_json or run.save_figure."
        )


def wait_for_everyone(call: str = "wait_for_everyone") -> None:
    """Wait until every process of a data-parallel run reaches this point, checked like :func:`in_step`."""
    in_step(call)


def feed_watchdog() -> None:
    """Note progress: with ``MMADAPT_WATCHDOG_S`` set, the stall watchdog restarts its count from now.

    When this process then makes no progress (no training step, pass batch or collective call) for
    that many seconds, it prints the stack of every thread to stderr and exits (code 1), so a hang
    ends with a report instead of holding the machines; terminated by its launcher (SIGTERM), it
    prints its stacks too. Without the variable this does nothing.
    """
    seconds = _watchdog_seconds()
    if seconds:
        _report_when_terminated()
        faulthandler.dump_traceback_later(seconds, exit=True, file=sys.stderr)


def stop_watchdog() -> None:
    """Stop the stall watchdog until the next :func:`feed_watchdog` (a run finished)."""
    if _watchdog_seconds():
        faulthandler.cancel_dump_traceback_later()


@functools.cache
def _report_when_terminated() -> None:
    """Print the stacks on SIGTERM too: a launcher (torchrun) terminates the other processes when one
    exits, and those stacks show where each of them waited."""
    if hasattr(signal, "SIGTERM") and hasattr(faulthandler, "register"):
        faulthandler.register(signal.SIGTERM, file=sys.stderr, all_threads=True, chain=True)


def _watchdog_seconds() -> float:
    value = os.environ.get(WATCHDOG_VARIABLE, "")
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        from .errors import UserError

        raise UserError(f"{WATCHDOG_VARIABLE}={value!r}: give the stall limit in seconds, e.g. 600") from None
    return max(seconds, 0.0)
