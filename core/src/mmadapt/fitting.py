"""One training stage: its length, optimiser and schedule, the epochs, checkpoints and resume."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from .errors import NonFiniteLossError, UserError
from .exact_shards import ShardGradients, local_shards, refuse_batch_statistics, shard_of
from .optim import build_optimizer, build_scheduler
from .passes import loader, to_device
from .processes import feed_watchdog
from .sampling import batches_of, seed_everything
from .stage_checkpoints import restore_stage, save_stage

if TYPE_CHECKING:
    from .adapter import Adapter
    from .checkpoints import RunState
    from .data import Split
    from .run_context import RunContext


def check_stage_length(stage: str, epochs: int | None, iterations: int | None, batch_size: int | None) -> None:
    """A ``UserError`` unless the lengths given are positive integers, and not both epochs and iterations."""
    for key, value in (("epochs", epochs), ("iterations", iterations), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"run.fit(stage={stage!r}): {key} must be a positive integer; got {value!r}")
    if epochs is not None and iterations is not None:
        raise UserError(f"run.fit(stage={stage!r}): give the stage's length as epochs or iterations, not both")


def check_batch_split(stage: str, items: int, batch_size: int, num_processes: int, shards: int = 0) -> None:
    """A ``UserError`` unless every global batch of the stage splits evenly over the processes.

    Each process takes every ``num_processes``-th item of a global batch and DDP averages their
    gradients: the single-process gradient only when every process holds as many items (a process
    with none would leave the others waiting in the gradient exchange). With ``shards``
    (``train.exact_shards``) every batch must split into that many shards, and the processes must
    divide the shards.
    """
    sizes = sorted({len(batch) for batch in batches_of(items, batch_size)})
    if shards:
        _check_shards(stage, items, batch_size, num_processes, shards, sizes)
        return
    if num_processes == 1:
        return
    reason = _uneven(sizes, num_processes, batch_size, items)
    if reason:
        raise UserError(
            f"run.fit(stage={stage!r}): {reason}, which does not split evenly over {num_processes} processes. "
            f"Set train.batch_size (or the protocol's batch size for this stage) to a multiple of {num_processes}, "
            "or run on a process count that divides it; see docs/multi-gpu.md"
        )


def _check_shards(stage: str, items: int, batch_size: int, num_processes: int, shards: int, sizes: list[int]) -> None:
    if shards % num_processes:
        raise UserError(
            f"run.fit(stage={stage!r}): train.exact_shards={shards} does not split over {num_processes} processes; "
            f"set it to a multiple of {num_processes} (or 0 for DDP's average); see docs/multi-gpu.md"
        )
    reason = _uneven(sizes, shards, batch_size, items)
    if reason:
        raise UserError(
            f"run.fit(stage={stage!r}): {reason}, which does not split into train.exact_shards={shards} shards. "
            f"Set train.batch_size (or the protocol's batch size for this stage) to a multiple of {shards}, or "
            "train.exact_shards to a divisor of it; see docs/multi-gpu.md"
        )


def fit_stage(context: RunContext, adapter: Adapter, state: RunState, dataset: Split, objective: Callable, *,
              stage: str, epochs: int | None, iterations: int | None, groups: list[str] | None,
              batch_size: int) -> None:
    """Train ``stage`` on ``dataset`` (see :meth:`mmadapt.Run.fit`); skip it when finished, resume it when started."""
    train = context.recipe.train
    check_batch_split(stage, len(dataset), batch_size, context.num_processes, train.exact_shards)
    steps_per_epoch = math.ceil(len(batches_of(len(dataset), batch_size)) / train.grad_accum)
    epochs = math.ceil(iterations / steps_per_epoch) if iterations else epochs or train.epochs
    stage_steps = iterations or epochs * steps_per_epoch
    # Checkpoints hold every trainable tensor, also those a stage leaves frozen.
    checkpoint_keys = list(adapter.trainable_state_dict())
    optimizer = build_optimizer(adapter, train, groups)
    scheduler = build_scheduler(optimizer, train, epochs, steps_per_epoch, iterations)
    start_epoch = restore_stage(context, adapter, stage, optimizer, scheduler)
    if start_epoch > epochs:
        return
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    progress = tqdm(total=stage_steps - (start_epoch - 1) * steps_per_epoch, desc=f"{context.recipe.name} [{stage}]",
                    disable=not context.is_main, leave=False)
    accelerator = context.accelerator
    with _training_only(adapter, trained):
        # The prepared model wraps the adapter (data-parallel) and trains its very parameters.
        model, optimizer = accelerator.prepare(adapter, optimizer)
        try:
            for epoch in range(start_epoch, epochs + 1):
                budget = min(steps_per_epoch, stage_steps - (epoch - 1) * steps_per_epoch)
                _train_epoch(context, model, optimizer, scheduler, trained, objective, dataset, batch_size,
                             stage, epoch, budget, progress)
                if train.schedule_unit == "epoch":
                    scheduler.step()
                with torch.no_grad():
                    adapter.on_epoch_end(stage, epoch, epochs)
                if epoch % train.checkpoint_every == 0 or epoch == epochs:
                    save_stage(context, adapter, state, stage, epoch, optimizer, scheduler, checkpoint_keys)
        finally:
            progress.close()
            accelerator.free_memory()


def _train_epoch(context: RunContext, model, optimizer, scheduler, trained, objective, dataset, batch_size: int,
                 stage: str, epoch: int, budget: int, progress) -> None:
    """One epoch of at most ``budget`` optimiser steps."""
    train, accelerator = context.recipe.train, context.accelerator
    seed_everything(context.recipe.seed, stage, epoch)
    batches = loader(context, dataset, batch_size, shuffle=True, epoch_seed=(context.recipe.seed, stage, epoch))
    model.train()
    if train.exact_shards:
        refuse_batch_statistics(model)
    micro = taken = images = 0
    since = time.perf_counter()
    for batch in batches:
        context.skipped.note(batch)
        if "index" not in batch:  # every image of the batch was unreadable and skipped
            continue
        images += len(batch["index"])
        batch = to_device(batch, accelerator.device)
        where = f"at stage {stage!r}, epoch {epoch}, step {context.steps}"
        if train.exact_shards:
            loss, terms = _sharded_backward(context, model, objective, batch, trained, where)
        else:
            loss, terms = _backward(context, model, objective, batch, where, train.grad_accum)
        micro += 1
        if micro % train.grad_accum and micro < len(batches):
            continue
        if train.clip_grad_norm:
            accelerator.clip_grad_norm_(trained, train.clip_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if train.schedule_unit == "step":
            scheduler.step()
        context.steps += 1
        taken += 1
        feed_watchdog()
        progress.update(1)
        if context.steps % train.log_every == 0:
            # Throughput since the last log, data loading included, over every process.
            speed = images * context.num_processes / (time.perf_counter() - since)
            context.log_step(stage, epoch, {**_step_logs(loss, terms, optimizer), "images_per_s": round(speed, 2)})
            images, since = 0, time.perf_counter()
        if taken == budget:
            break


def _backward(context: RunContext, model, objective, batch: dict, where: str, divisor: int):
    """The loss of ``batch``, its gradient (divided by ``divisor``) added to ``.grad``; the loss and its terms."""
    accelerator = context.accelerator
    with accelerator.autocast():
        outputs = model(batch)
        loss, terms = objective(outputs, batch)
    if not torch.isfinite(loss.detach()).all():
        raise NonFiniteLossError(
            f"loss became {loss.item()} {where}; the last good checkpoint is kept in {context.run_dir.checkpoints}. "
            "Lower train.lr or use train.precision=fp32."
        )
    accelerator.backward(loss / divisor)
    return loss, terms


def _sharded_backward(context: RunContext, model, objective, batch: dict, trained, where: str):
    """``batch``'s gradient as the shard-ordered sum of its shards' gradients (:mod:`mmadapt.exact_shards`);
    the loss and terms logged are the means over this process's shards."""
    train, size = context.recipe.train, len(batch["index"])
    gradients = ShardGradients(trained, train.exact_shards, context.num_processes)
    parts = []
    # The shards' gradients are exchanged whole below, never by DDP's all-reduce.
    with context.accelerator.no_sync(model):
        for positions in local_shards(size, train.exact_shards, context.num_processes):
            parts.append(_backward(context, model, objective, shard_of(batch, positions, size), where, 1))
            gradients.keep()
    gradients.add_to_grads(train.exact_shards * train.grad_accum)
    loss = torch.stack([part[0].detach() for part in parts]).mean()
    terms = {key: torch.stack([part[1][key].detach() for part in parts]).mean() for key in parts[0][1]}
    return loss, terms


def _step_logs(loss: torch.Tensor, terms: dict[str, Any], optimizer) -> dict[str, float]:
    logs = {"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in terms.items()}}
    for group in optimizer.param_groups:
        logs[f"lr/{group['name']}"] = group["lr"]
    return logs


@contextmanager
def _training_only(adapter: Adapter, trained: list[torch.nn.Parameter]) -> Iterator[None]:
    """Inside the block only ``trained`` parameters require gradients; no ``.grad`` survives either end."""
    keep = {id(p) for p in trained}
    frozen = [p for p in adapter.parameters() if p.requires_grad and id(p) not in keep]
    for p in adapter.parameters():
        p.grad = None
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
        for p in adapter.parameters():
            p.grad = None


def _uneven(sizes: list[int], parts: int, batch_size: int, items: int) -> str | None:
    """Which batch does not split into ``parts`` equal parts, in words, or None when every one does."""
    uneven = [size for size in sizes if size % parts]
    if not uneven:
        return None
    if batch_size in uneven:
        return f"its batch size is {batch_size}"
    return f"its {items} items make one batch of {uneven[0]}"
