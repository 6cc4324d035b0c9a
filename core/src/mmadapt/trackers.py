"""Experiment trackers of a run (``train.log_with``), through HF Accelerate's tracker integrations.

Cheap to import: the recipe check (:func:`check_trackers`) only looks for the packages; the trackers
start with the run's Accelerator (:func:`start_trackers`), on the main process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accelerate import Accelerator

    from .recipe import Recipe

#: Accelerate's tracker names that a recipe may list: the module each one needs, and what installs it.
TRACKERS: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "mmadapt[tensorboard]"),
    "wandb": ("wandb", "mmadapt[wandb]"),
    "mlflow": ("mlflow", "mmadapt[mlflow]"),
    "comet_ml": ("comet_ml", "comet_ml"),
    "aim": ("aim", "aim"),
    "clearml": ("clearml", "clearml"),
    "dvclive": ("dvclive", "dvclive"),
}

#: Where file-based trackers (TensorBoard) write, inside the run directory: ``trackers/<recipe name>/``.
TRACKERS_FOLDER = "trackers"


def check_trackers(names: list[str]) -> None:
    """Raise ``ValueError`` naming ``train.log_with`` for an unknown tracker or one whose package is missing."""
    for name in names:
        if name not in TRACKERS:
            raise ValueError(f"train.log_with: unknown tracker {name!r}; one of {', '.join(TRACKERS)}")
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"train.log_with: {name} needs the {module} package, which is not installed; "
                             f"fix: pip install '{install}'")


def start_trackers(accelerator: Accelerator, recipe: Recipe) -> None:
    """Start the recipe's trackers on ``accelerator`` (main process), with the resolved recipe as their config."""
    if recipe.train.log_with:
        accelerator.init_trackers(recipe.name, config=flat_config(recipe.resolved))


def log_to_trackers(accelerator: Accelerator, values: dict[str, float], step: int) -> None:
    """Log scalars at an optimiser step to every started tracker (none: nothing happens)."""
    if accelerator.trackers:
        accelerator.log(values, step=step)


def finish_trackers(accelerator: Accelerator) -> None:
    """Flush and close every tracker of ``accelerator``.

    Not ``Accelerator.end_training``: that also ends the process group, which the next seed of a
    ``--seeds`` run still uses.
    """
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()


def trackers_folder(run_folder: Path) -> Path:
    """The folder file-based trackers write into."""
    return run_folder / TRACKERS_FOLDER


def flat_config(resolved: Any) -> dict[str, Any]:
    """The resolved recipe as ``{"train.lr": 0.002, ...}``; lists and nulls become text (trackers take scalars)."""
    from omegaconf import OmegaConf

    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        else:  # None, lists: TensorBoard's hyperparameters take only numbers, booleans and text
            flat[prefix] = "null" if value is None else str(value)

    walk("", OmegaConf.to_container(resolved, resolve=True))
    return flat
