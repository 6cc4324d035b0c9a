"""The trained enhancement network of a finished lit run, for ``adapt lit`` and the photos check."""

from __future__ import annotations

from pathlib import Path


def load_enhancer(run_dir: Path):
    """The trained lit adapter of ``run_dir``; a ``UserError`` when the run is not an enhancement run."""
    from mmadapt import UserError, load_run

    from .adapter import LitAdapter

    finished = load_run(run_dir)
    if not isinstance(finished.adapter, LitAdapter):
        raise UserError(
            f"{run_dir}: its adapter {finished.recipe.adapter.name!r} is not an enhancement adapter; "
            "`adapt lit` needs a run of rave, clip-lit or clip-lit-latent"
        )
    if finished.checkpoint is None:
        raise UserError(f"{run_dir}: the run has no checkpoint yet; train it first (`adapt run --resume {run_dir}`)")
    return finished.adapter
