"""A run's checkpoints of its stages: written after epochs, read back on resume and by ``adapt eval``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import torch

from .checkpoints import (
    Checkpoint,
    CorruptCheckpointError,
    RunState,
    prune_checkpoints,
    read_checkpoints,
    write_checkpoint,
)
from .errors import UserError
from .processes import in_step

if TYPE_CHECKING:
    from .adapter import Adapter
    from .run_context import RunContext


def save_stage(context: RunContext, adapter: Adapter, state: RunState, stage: str, epoch: int, optimizer: Any,
               scheduler: Any, keys: list[str]) -> None:
    """Checkpoint ``stage`` after ``epoch``: the ``keys`` weights, optimiser, schedule, counters, protocol state.

    Collective: every process merges its skip record and waits; the main process writes.
    """
    context.merge_skipped()
    in_step(f"the checkpoint of stage {stage!r}, epoch {epoch}", context.num_processes)
    if not context.is_main:
        return
    tensors = adapter.state_dict()
    training_state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "steps": context.steps,
        **context.skipped.state_dict(),
    }
    write_checkpoint(
        context.run_dir.checkpoints / f"{stage}-epoch{epoch:04d}",
        stage=stage, epoch=epoch, steps=context.steps,
        weights={k: tensors[k].detach().contiguous().cpu() for k in keys},
        training_state=training_state, state=state,
    )
    prune_checkpoints(context.run_dir.path, stage, context.recipe.train.keep_checkpoints)


def restore_stage(context: RunContext, adapter: Adapter, stage: str, optimizer: Any, scheduler: Any) -> int:
    """Load the newest readable checkpoint of ``stage``; return the first epoch still to train.

    An unreadable checkpoint is reported and the one before it is used; when none can be read,
    the stage trains from the start.
    """
    first_error = None
    for checkpoint in reversed(read_checkpoints(context.run_dir.path, stage)):
        try:
            weights, state = checkpoint.weights(), checkpoint.training_state()
        except CorruptCheckpointError as error:
            print(f"warning: {error}; resuming from the checkpoint before it", file=sys.stderr)
            first_error = first_error or error
            continue
        load_weights(adapter, checkpoint, weights)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        context.steps = int(state["steps"])
        context.skipped.load_state_dict(state)
        context.log_resumed(stage, checkpoint.epoch)
        return checkpoint.epoch + 1
    if first_error is not None:
        print(f"warning: no readable checkpoint of stage {stage!r} is left; it trains from the start",
              file=sys.stderr)
    return 1


def restore_protocol_state(context: RunContext, state: RunState) -> None:
    """On resume, the protocol state of the newest readable checkpoint of any stage."""
    for checkpoint in reversed(read_checkpoints(context.run_dir.path)):
        try:
            checkpoint.load_state_into(state)
            return
        except CorruptCheckpointError as error:
            print(f"warning: {error}", file=sys.stderr)


def load_weights(adapter: Adapter, checkpoint: Checkpoint, weights: dict[str, torch.Tensor]) -> None:
    """The checkpoint's trainable weights into ``adapter``; a ``UserError`` when they do not fit it."""
    try:
        adapter.load_trainable_state_dict(weights)
    except (ValueError, RuntimeError) as exc:
        raise UserError(
            f"{checkpoint.folder}: the checkpoint does not fit adapter {type(adapter).__name__} "
            f"({str(exc).splitlines()[0][:300]}); the recipe's adapter section changed since it was written"
        ) from None
