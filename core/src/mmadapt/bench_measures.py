"""Measurements shared by ``adapt bench`` benchmarks: activation memory counted without running a step,
the memory the system can still give, a call's wall and CPU time, and variants of a training step
measured side by side."""

from __future__ import annotations

import statistics
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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


@dataclass
class StepMeasures:
    """What :func:`measure_steps` found for each variant of a training step."""

    #: Activation bytes of each variant's forward pass (:func:`activation_bytes`).
    memory: dict[str, int]
    #: Median wall and CPU seconds of each variant that was run (a variant too large to run has none).
    wall: dict[str, float]
    cpu: dict[str, float]
    #: The memory the system could still give when the variants were counted (None where unknown).
    available: int | None

    def ratios(self, pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
        """``"a / b, memory"``, and where both ran ``"a / b"`` (wall) and ``"a / b, CPU time"``, for each pair."""
        ratios = {}
        for slower, faster in pairs:
            if slower in self.wall and faster in self.wall:
                ratios[f"{slower} / {faster}"] = self.wall[slower] / self.wall[faster]
                ratios[f"{slower} / {faster}, CPU time"] = self.cpu[slower] / self.cpu[faster]
            ratios[f"{slower} / {faster}, memory"] = self.memory[slower] / self.memory[faster]
        return ratios


def measure_steps(
    steps: dict[str, Callable[[], object]],
    losses: dict[str, Callable[[], object]],
    parameters: Iterable[torch.Tensor],
    repeats: int,
) -> StepMeasures:
    """Count every variant's activation memory, then time those that fit, ``repeats`` rounds interleaved.

    ``steps[name]`` runs one whole step of a variant, ``losses[name]`` only its forward pass (counted,
    not run backward); ``parameters`` are not counted. A variant whose activations would take more
    than 80% of the memory the system can still give is counted but not run. Progress goes to stdout.
    """
    parameters = list(parameters)
    memory = {}
    for name in steps:
        print(f"  activation memory: {name} ...", flush=True)
        memory[name] = activation_bytes(losses[name], parameters)
    available = available_bytes()
    runs: dict[str, list[tuple[float, float]]] = {
        name: [] for name in steps if available is None or memory[name] < 0.8 * available
    }
    for index in range(repeats):
        for name in runs:
            print(f"  step {index + 1}/{repeats}: {name} ...", flush=True)
            runs[name].append(wall_and_cpu_seconds(steps[name]))
    wall = {name: statistics.median(w for w, _ in times) for name, times in runs.items()}
    cpu = {name: statistics.median(c for _, c in times) for name, times in runs.items()}
    return StepMeasures(memory, wall, cpu, available)


def print_step_table(measures: StepMeasures, labels: dict[str, str], positions: dict[str, str]) -> None:
    """One row per variant (in ``labels``' order): its text positions, time, CPU time and activation memory;
    then a line for each variant that was not run."""
    print(f"  {'step':<48} {'text positions':>16} {'time':>10} {'CPU time':>10} {'activation memory':>18}")
    for name, label in labels.items():
        took = f"{measures.wall[name]:8.3f} s" if name in measures.wall else "not run"
        used = f"{measures.cpu[name]:8.3f} s" if name in measures.cpu else ""
        print(f"  {label:<48} {positions[name]:>16} {took:>10} {used:>10} {format_gib(measures.memory[name]):>18}")
    for name in labels:
        if name not in measures.wall:
            print(f"  ({name} not run: its activations alone take {format_gib(measures.memory[name])}, "
                  f"{format_gib(measures.available or 0)} of memory available)")
