"""The multi-process matrix: a recipe gives the same metrics on several processes as on one, and never hangs.

:func:`assert_same_across_processes` runs a list of :class:`ProcessCase` (shortened recipes) in one
process and under ``torchrun --nproc_per_node N`` (gloo on the CPU), every case of a list in the same
launch, and compares each case's summary. Each process runs under the stall watchdog
(``MMADAPT_WATCHDOG_S``), so a hang fails in bounded time with the stacks of every process in the
error. Every bundled plugin lists its recipes in a test of its own; a new plugin adds one the same way
(docs/testing-plugins.md).

Run as ``python -m mmadapt.testing_processes SPEC.json`` this module is the program launched: it runs
every case of SPEC in turn in one process group and writes each case's error (a ``UserError``, the
same on every process) beside its run folder.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Seconds without progress after which a launched process prints its stacks and exits.
STALL_SECONDS = 120


@dataclass(frozen=True)
class ProcessCase:
    """One recipe of the matrix, shortened to seconds, and what may differ across process counts."""

    #: Names the case's run folders and its lines in a failure report.
    name: str
    #: A recipe file or a recipe mapping.
    recipe: str | Path | dict[str, Any]
    #: ``key=value`` overrides that shorten it (few items, small images, few steps).
    overrides: tuple[str, ...] = ()
    #: The largest relative (and absolute) difference allowed between a metric's values; 0: the same
    #: digits. Training on several processes sums each batch's gradients in another order (per process,
    #: then across them), so a trained case whose metrics show it either trains with
    #: ``train.exact_shards`` (the same bits) or states a small tolerance and says why in ``reason``.
    tolerance: float = 0.0
    reason: str = ""
    #: When the recipe cannot run on several processes: text the multi-process run's error must contain.
    error: str | None = None


def assert_same_across_processes(cases: list[ProcessCase], folder: str | Path, processes: int = 2,
                                 stall_seconds: int = STALL_SECONDS) -> dict[str, tuple[dict, dict]]:
    """Run ``cases`` in one process and on ``processes``; assert the same metrics and steps (or the expected error).

    Each launch runs every case in turn, under the stall watchdog; a failed or stalled launch fails
    with its output (the stacks of every process for a stall). Returns each case's one-process and
    multi-process summaries (an empty dict for an expected error), for further checks.
    """
    folder = Path(folder)
    single = _launch(cases, folder / "1", 1, stall_seconds)
    multi = _launch(cases, folder / str(processes), processes, stall_seconds)
    problems, found = [], {}
    for case in cases:
        error = multi / f"{case.name}.error"
        if case.error is not None:
            message = error.read_text() if error.is_file() else "(no error)"
            if case.error not in message:
                problems.append(f"{case.name}: expected an error containing {case.error!r}; got {message}")
            found[case.name] = (_summary(single, case), {})
            continue
        if error.is_file():
            problems.append(f"{case.name}: failed on {processes} processes: {error.read_text()}")
            continue
        one, many = _summary(single, case), _summary(multi, case)
        problems += _differences(case, one, many, processes)
        found[case.name] = (one, many)
    assert not problems, "\n".join(problems)
    return found


def _differences(case: ProcessCase, one: dict, many: dict, processes: int) -> list[str]:
    problems = []
    if one["steps"] != many["steps"]:
        problems.append(f"{case.name}: {one['steps']} steps in 1 process, {many['steps']} on {processes}")
    if set(one["metrics"]) != set(many["metrics"]):
        problems.append(f"{case.name}: metric keys differ: {sorted(set(one['metrics']) ^ set(many['metrics']))}")
    for key in sorted(set(one["metrics"]) & set(many["metrics"])):
        a, b = one["metrics"][key], many["metrics"][key]
        same = a == b if case.tolerance == 0 else math.isclose(a, b, rel_tol=case.tolerance, abs_tol=case.tolerance)
        if not same:
            problems.append(f"{case.name}: {key} is {a!r} in 1 process, {b!r} on {processes} "
                            f"(tolerance {case.tolerance})")
    return problems


def _summary(folder: Path, case: ProcessCase) -> dict:
    path = folder / case.name / "summary.json"
    if not path.is_file():
        raise AssertionError(f"{case.name}: no summary.json in {path.parent}")
    return json.loads(path.read_text())


def _launch(cases: list[ProcessCase], folder: Path, processes: int, stall_seconds: int) -> Path:
    """Run every case in one launch of ``processes`` processes into ``folder/<name>``; return ``folder``."""
    from omegaconf import OmegaConf

    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for case in cases:
        recipe = case.recipe
        if isinstance(recipe, dict):
            recipe = folder / f"{case.name}.yaml"
            OmegaConf.save(OmegaConf.create(case.recipe), recipe)
        specs.append({"name": case.name, "recipe": str(recipe), "overrides": list(case.overrides),
                      "output_dir": str(folder / case.name), "error_file": str(folder / f"{case.name}.error")})
    spec = folder / "cases.json"
    spec.write_text(json.dumps(specs, indent=2))
    launcher = [sys.executable]
    if processes > 1:
        # --tee prefixes every line with its process ("[default1]:"), so interleaved stacks stay readable.
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(processes), "--tee", "3", "--log-dir", str(folder / "logs")]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MMADAPT_WATCHDOG_S=str(stall_seconds))
    command = [*launcher, "-m", "mmadapt.testing_processes", str(spec)]
    # The watchdog ends a stalled process; this limit is the last resort, should a launcher itself stall.
    limit = stall_seconds * (len(cases) + 2)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          start_new_session=True) as launch:
        try:
            output, _ = launch.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(launch.pid, signal.SIGKILL)
            output, _ = launch.communicate()
            stalled = f"{processes}-process launch still running after {limit} s:\n{output[-20000:]}"
            raise AssertionError(stalled) from None
    if launch.returncode != 0:
        raise AssertionError(f"{processes}-process launch failed (exit code {launch.returncode}):\n{output[-20000:]}")
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run every case of a SPEC file (what :func:`assert_same_across_processes` launches) in turn."""
    from .errors import UserError
    from .processes import feed_watchdog, is_main_process
    from .runner import run_recipe_file

    (spec,) = argv if argv is not None else sys.argv[1:]
    feed_watchdog()
    for case in json.loads(Path(spec).read_text()):
        try:
            run_recipe_file(case["recipe"], case["overrides"], output_dir=case["output_dir"])
        except UserError as error:  # raised alike on every process (checked in step), so the next case can run
            if is_main_process():
                Path(case["error_file"]).write_text(str(error))
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # A process group left to the interpreter's exit can abort in gloo's teardown.
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Every result is on disk by now; the interpreter's own teardown (garbage-collecting gloo's objects)
    # has been seen to abort a launched process now and then, which would fail a launch that succeeded.
    os._exit(code)
