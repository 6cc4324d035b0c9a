"""Measurements shared by ``adapt bench`` benchmarks: activation memory counted without running a step,
the memory the system can still give, and a call's wall and CPU time."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable

import torch


def activation_bytes(loss_of: Callable[[], object], parameters: Iterable[torch.Tensor], keep: bool = False) -> int:
    """Bytes of the distinct storages ``loss_of()``'s forward pass saves for backward, ``parameters`` not counted.

    With ``keep=False`` nothing is kept (the pack hook drops each tensor after counting it), so the
    count works for a step too large to run, and the forward pass cannot be followed by a backward
    pass. A storage counts once while a tensor seen on it is alive; a storage freed and another
    allocated at its address counts again. ``keep=True`` holds every saved tensor until the count is
    done: the plain count, which a test checks the other against.
    """
    skip = {p.untyped_storage().data_ptr() for p in parameters}
    seen: dict[int, list[weakref.ref]] = {}
    kept: list[torch.Tensor] = []
    total = 0

    def pack(tensor: torch.Tensor) -> None:
        nonlocal total
        storage = tensor.untyped_storage()
        address = storage.data_ptr()
        if address in skip:
            return
        alive = [ref for ref in seen.get(address, []) if ref() is not None]
        if not alive:
            total += storage.nbytes()
        seen[address] = [*alive, weakref.ref(tensor)]
        if keep:
            kept.append(tensor)

    def unpack(_: None) -> torch.Tensor:
        raise RuntimeError("activation_bytes keeps no graph; its forward pass cannot be backpropagated")

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        loss_of()
    return total


def available_bytes() -> int | None:
    """Memory the system can still give this process (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def wall_and_cpu_seconds(call: Callable[[], object]) -> tuple[float, float]:
    """Wall time and this process's CPU time (all its threads) of one call.

    On a machine other jobs share, wall time grows with their load and CPU time much less; with one
    thread CPU time is the call's own cost, with more it also counts threads waiting for each other.
    """
    started, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - started, time.process_time() - cpu


def format_gib(size: int) -> str:
    """``size`` bytes in GiB, as benchmark tables print them: ``"3.00 GiB"``."""
    return f"{size / 2**30:.2f} GiB"
