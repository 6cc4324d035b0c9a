"""The processes of a run: Accelerate's per-process state, set up the way the engine's Accelerator is."""

from __future__ import annotations

from typing import Any


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


def wait_for_everyone() -> None:
    """Wait until every process of a data-parallel run reaches this point (nothing to wait for in one process)."""
    process_state().wait_for_everyone()
