"""From a recipe to a finished run directory: build the components, run the protocol, write summary.json."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from .assembly import assemble
from .checkpoints import read_checkpoints
from .engine import Run
from .errors import UserError
from .plots import draw_training_curves
from .plugins import PluginManager, get_plugin_manager, plugin_report
from .processes import cpu_only, feed_watchdog, is_main_process, stop_watchdog, wait_for_everyone
from .recipe import Recipe, load_recipe, validate_recipe
from .run_context import RunContext
from .rundir import SEEDS, SUMMARY, RunDir, shared_timestamp
from .trackers import finish_trackers, start_trackers, trackers_folder


def run_recipe_file(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    output_dir: str | Path | None = None,
    seeds: list[int] | None = None,
    manager: PluginManager | None = None,
) -> dict[str, Any]:
    """Load a recipe and run it once, or once per seed with a mean/std summary."""
    manager = manager or get_plugin_manager()
    recipe = load_recipe(path, overrides, registry=manager.registry)
    if not seeds:
        summary = run_recipe(recipe, RunDir.create(recipe.name, output_dir), manager)
        print_table(recipe, summary)
        return summary
    parent = RunDir.create(recipe.name, output_dir)
    if is_main_process():
        parent.write_json(SEEDS, {"seeds": list(seeds), "recipe": OmegaConf.to_container(recipe.given)})
    return _run_seeds(parent, recipe, seeds, manager, resume=False)


def _run_seeds(parent: RunDir, recipe: Recipe, seeds: list[int], manager: PluginManager,
               resume: bool) -> dict[str, Any]:
    """Run every seed into ``parent/seed<N>``; resuming, a finished seed is kept and a started one continued."""
    if resume:  # check every seed that exists before running anything, so no mixed summary can result
        for seed in seeds:
            seed_dir = RunDir(parent.path / f"seed{seed}")
            if (seed_dir.path / "resolved.yaml").is_file():
                _check_unchanged(seed_dir, recipe.with_seed(seed))
    per_seed = []
    for seed in seeds:
        seed_dir = RunDir.create(recipe.name, parent.path / f"seed{seed}")
        seeded = recipe.with_seed(seed)
        if resume and (seed_dir.path / SUMMARY).is_file():
            per_seed.append(seed_dir.read_json(SUMMARY))
        else:  # a started seed continues from its checkpoints (checked above), a new one starts
            per_seed.append(run_recipe(seeded, seed_dir, manager))
    summary = aggregate_seeds(recipe.name, per_seed)
    if is_main_process():
        parent.write_json(SUMMARY, summary)
    print_table(recipe, summary)
    return summary


def run_recipe(recipe: Recipe, run_dir: RunDir, manager: PluginManager | None = None) -> dict[str, Any]:
    """Run one seed of a validated recipe into ``run_dir`` (fresh, or resumed from its checkpoints); return its summary.

    ``recipe.yaml`` is written before anything is built; few-shot items saved in the folder are reused.
    """
    manager = manager or get_plugin_manager()
    started = time.perf_counter()
    feed_watchdog()
    if is_main_process():
        run_dir.write_recipe(recipe.given, recipe.resolved)
        run_dir.write_env(plugin_report(manager))
    accelerator = tracked_accelerator(recipe, run_dir)
    run, protocol = build_run(recipe, run_dir, manager, saved_in=run_dir, accelerator=accelerator)
    start_trackers(accelerator, recipe)
    try:
        if is_main_process():
            manager.lifecycle.on_run_start(run=run)
        metrics = protocol.run(run)
        facts = run.summary()
        summary = {"name": recipe.name, "seed": recipe.seed, "metrics": metrics, "params": facts["params"],
                   "wall_time_s": round(time.perf_counter() - started, 3), "steps": facts["steps"],
                   "skipped_images": facts["skipped_images"]}
        if is_main_process():
            run_dir.write_json(SUMMARY, summary)
            draw_training_curves(run_dir.path)
            manager.lifecycle.on_run_end(run=run, summary=summary)
    finally:
        finish_trackers(accelerator)
    wait_for_everyone("the run's end (after protocol.run and summary.json)")
    stop_watchdog()
    return summary


def build_run(recipe: Recipe, run_dir: RunDir, manager: PluginManager, *, saved_in: RunDir | None = None,
              accelerator: Any = None) -> tuple[Run, Any]:
    """The run and protocol of one seed: accelerator, then backbone, data, protocol and adapter (:func:`assemble`).

    Few-shot items saved in ``saved_in`` are reused; the items used are saved in ``run_dir``. Without
    ``accelerator``, one with the recipe's precision and no trackers.
    """
    from .data import split_transforms

    accelerator = accelerator or _accelerator(recipe.train.precision)
    parts = assemble(recipe, saved_in=saved_in, save_in=run_dir)
    adapter = parts.adapter.to(accelerator.device)
    objective = recipe.objective.build(adapter)
    transforms = split_transforms(parts.bundle.task, parts.backbone.preprocessing, recipe.data.config.augment)
    context = RunContext(recipe, run_dir, accelerator, manager.lifecycle, transforms)
    return Run(context, parts.bundle, adapter, objective), parts.protocol


def tracked_accelerator(recipe: Recipe, run_dir: RunDir) -> Any:
    """The run's Accelerator with the recipe's trackers (``train.log_with``), which write into ``run_dir``."""
    return _accelerator(recipe.train.precision, recipe.train.log_with, trackers_folder(run_dir.path))


def _accelerator(precision: str, log_with: tuple[str, ...] | list[str] = (), trackers_dir: Path | None = None) -> Any:
    """An Accelerator with the recipe's precision and trackers (starting Accelerate's state afresh when it
    had another precision); file-based trackers write into ``trackers_dir``."""
    from accelerate import Accelerator

    cpu = cpu_only()
    chosen = mixed_precision(precision, cpu)
    options = {"log_with": list(log_with), "project_dir": str(trackers_dir)} if log_with else {}
    try:
        return Accelerator(mixed_precision=chosen, cpu=cpu, **options)
    except ValueError as error:
        if "already been initialized" not in str(error):
            raise
        # Accelerate keeps one precision per process; a later run in the same process (a notebook,
        # a test session) with another train.precision starts its state afresh. The process group,
        # held by PartialState, is kept; an earlier Accelerator still in use follows the new setting.
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()
        return Accelerator(mixed_precision=chosen, cpu=cpu, **options)


def resume_run(path: str | Path, manager: PluginManager | None = None) -> dict[str, Any]:
    """Continue a killed run from its newest checkpoints; refuse when its recipe was changed.

    ``path`` is a run directory, or the parent folder of a ``--seeds`` run: there, finished seeds
    are kept, the interrupted one resumes and the seeds not started yet run.
    """
    manager = manager or get_plugin_manager()
    run_dir = RunDir(path)
    if (run_dir.path / SEEDS).is_file():
        saved = run_dir.read_json(SEEDS)
        source = str(run_dir.path / SEEDS)
        recipe = validate_recipe(OmegaConf.create(saved["recipe"]), source, [], registry=manager.registry)
        return _run_seeds(run_dir, recipe, saved["seeds"], manager, resume=True)
    recipe = _saved_recipe(run_dir, manager)
    _check_unchanged(run_dir, recipe)
    summary = run_recipe(recipe, run_dir, manager)
    print_table(recipe, summary)
    return summary


def _check_unchanged(run_dir: RunDir, recipe: Recipe) -> None:
    saved = OmegaConf.load(run_dir.path / "resolved.yaml")
    if OmegaConf.to_container(saved) != OmegaConf.to_container(recipe.resolved):
        raise UserError(
            f"{run_dir.path}: resolved.yaml no longer matches recipe.yaml with the installed plugins' defaults; "
            "resuming would not give the result of an uninterrupted run. Start a new run instead."
        )


def evaluate_run(path: str | Path, overrides: list[str] | None = None,
                 manager: PluginManager | None = None) -> dict[str, float]:
    """Re-evaluate the adapter saved in a run directory, optionally on other data (overrides)."""
    manager = manager or get_plugin_manager()
    run_dir = RunDir(path)
    recipe = _saved_recipe(run_dir, manager, overrides or [])
    found = read_checkpoints(run_dir.path)
    feed_watchdog()
    eval_dir = RunDir.create(recipe.name, run_dir.path / "evals" / shared_timestamp("%Y%m%d-%H%M%S"))
    if is_main_process():
        eval_dir.write_recipe(recipe.given, recipe.resolved)
    accelerator = tracked_accelerator(recipe, eval_dir)
    run, protocol = build_run(recipe, eval_dir, manager, saved_in=run_dir, accelerator=accelerator)
    start_trackers(accelerator, recipe)
    try:
        if found:
            run.load_checkpoint(found[-1])
        metrics = protocol.evaluate(run)
    finally:
        finish_trackers(accelerator)
    if is_main_process():
        eval_dir.write_json(SUMMARY, {"name": recipe.name, "seed": recipe.seed, "metrics": metrics,
                                      "checkpoint": str(found[-1].folder) if found else None})
    stop_watchdog()
    print_table(recipe, {"metrics": metrics})
    return metrics


@dataclass
class FinishedRun:
    """What :func:`load_run` gives: a run directory's recipe, backbone and adapter with its trained weights."""

    recipe: Recipe
    backbone: Any
    adapter: Any
    #: The checkpoint folder the weights came from (the one ``adapt eval`` uses); None if the run has none.
    checkpoint: Path | None


def load_run(path: str | Path, manager: PluginManager | None = None) -> FinishedRun:
    """Rebuild a finished run's backbone and adapter and load the checkpoint ``adapt eval`` would use.

    The adapter is built as the run built it (the dataset read for the task's classes, its knowledge
    file and saved few-shot items applied, the protocol's ``prepare`` too); it comes back in eval mode
    on the CPU.
    """
    manager = manager or get_plugin_manager()
    run_dir = RunDir(path)
    recipe = _saved_recipe(run_dir, manager)
    parts = assemble(recipe, saved_in=run_dir)
    backbone, adapter = parts.backbone, parts.adapter
    found = read_checkpoints(run_dir.path)
    if found:
        try:
            adapter.load_trainable_state_dict(found[-1].weights())
        except ValueError as exc:
            raise UserError(f"{found[-1].folder}: the checkpoint does not fit the run's adapter ({exc})") from None
    adapter.eval()
    return FinishedRun(recipe, backbone, adapter, found[-1].folder if found else None)


def _saved_recipe(run_dir: RunDir, manager: PluginManager, overrides: list[str] | None = None) -> Recipe:
    recipe_file = run_dir.path / "recipe.yaml"
    if not recipe_file.is_file():
        raise UserError(f"{run_dir.path}: not a run directory (no recipe.yaml); runs are listed by `adapt runs`")
    return validate_recipe(OmegaConf.load(recipe_file), str(recipe_file), overrides or [], registry=manager.registry)


def aggregate_seeds(name: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary over several seeds: per-seed summaries plus mean and std of every metric."""
    keys = [k for k in summaries[0]["metrics"] if all(k in s["metrics"] for s in summaries)]
    values = {k: [s["metrics"][k] for s in summaries] for k in keys}
    return {
        "name": name,
        "seeds": [s["seed"] for s in summaries],
        "metrics": {k: statistics.fmean(v) for k, v in values.items()},
        "mean": {k: statistics.fmean(v) for k, v in values.items()},
        "std": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in values.items()},
        "params": summaries[0]["params"],
        "wall_time_s": round(sum(s["wall_time_s"] for s in summaries), 3),
        "steps": summaries[0]["steps"],
        # Every seed meets the same unreadable files (or, few-shot, some of them): the most any seed met.
        "skipped_images": max(s.get("skipped_images", 0) for s in summaries),
        "runs": summaries,
    }


def print_table(recipe: Recipe, summary: dict[str, Any]) -> None:
    """Print method, split, metric and value (mean ± std for several seeds), on the main process."""
    if not is_main_process():
        return
    std = summary.get("std", {})
    rows = []
    for key, value in summary["metrics"].items():
        stage, _, rest = key.partition("/") if key.startswith("initial/") else ("", "", key)
        split, _, metric = rest.rpartition("/")
        method = f"{recipe.adapter.name} (before training)" if stage else recipe.adapter.name
        shown = f"{value:.2f}" + (f" ± {std[key]:.2f}" if key in std else "")
        rows.append((method, split or "-", metric, shown))
    header = ("method", "split", "metric", "value")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def mixed_precision(precision: str, cpu: bool) -> str:
    """Accelerate's ``mixed_precision`` for ``train.precision`` on this machine (``cpu``: no GPU used).

    ``auto`` is bf16 on a CUDA device with native bf16 (compute capability 8 and up: A100, H100), fp16
    with Accelerate's loss scaler on older CUDA devices, and fp32 on a CPU, where autocast is slower.
    """
    if precision == "auto":
        if cpu or not torch.cuda.is_available():
            return "no"
        # Emulated bf16 (pre-Ampere cards) is slower than fp16 with a loss scaler.
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    return {"fp32": "no"}.get(precision, precision)
