"""Reading a learned context back from a finished run directory (MVLPT's source-to-target transfer)."""

from __future__ import annotations

from pathlib import Path

import torch
from mmadapt import UserError, final_checkpoint

#: The key of the context in ``adapter.safetensors`` of coop and mvlpt runs.
CONTEXT_KEY = "prompt.ctx"


def load_context(path: str) -> torch.Tensor:
    """The learned context of a run directory, or the mean over the seeds of a ``--seeds`` run.

    MVLPT averages the source prompts of three seeds before transferring them; pointing
    ``init_from`` at the parent folder of ``adapt run --seeds 1,2,3`` does the same.
    """
    from safetensors.torch import load_file

    run_dir = Path(path).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"adapter.init_from: run directory {run_dir} not found")
    seed_dirs = sorted(p for p in run_dir.glob("seed*") if p.is_dir())
    runs = [run_dir] if (run_dir / "checkpoints").is_dir() or not seed_dirs else seed_dirs
    contexts = []
    for run in runs:
        folder = final_checkpoint(run)
        if folder is None:
            raise UserError(f"adapter.init_from: {run} has no checkpoints/<stage>-epochNNNN/; is it a finished run?")
        checkpoint = folder / "adapter.safetensors"
        weights = load_file(str(checkpoint))
        if CONTEXT_KEY not in weights:
            raise UserError(
                f"adapter.init_from: {checkpoint} holds no learned text context ({CONTEXT_KEY}); "
                "it must come from a coop or mvlpt run"
            )
        contexts.append(weights[CONTEXT_KEY])
    shapes = {tuple(c.shape) for c in contexts}
    if len(shapes) > 1:
        raise UserError(f"adapter.init_from: the seeds of {run_dir} learned contexts of different shapes {shapes}")
    return torch.stack(contexts).float().mean(dim=0)
