"""Passes over a split: seeded, sharded loaders and the gathered frozen pass every process gets whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import DataBundle, Split, collate
from .errors import UserError
from .processes import feed_watchdog
from .sampling import GlobalBatchSampler, SeededItems, stable_seed
from .worker_batches import WorkerBatches, collate_in_worker

if TYPE_CHECKING:
    from .run_context import RunContext

#: What a batch or an adapter output holds per item: a tensor with one row per item, or a list with
#: one entry per item (images of different sizes).
PerSample = torch.Tensor | list


def loader(context: RunContext, dataset, batch_size: int, shuffle: bool, epoch_seed: tuple | None = None,
           whole_batches: bool = False) -> DataLoader | WorkerBatches:
    """This process's share of ``dataset`` in (seeded, when ``shuffle``) global batches.

    With ``epoch_seed`` each item's random draws (augmentation) are seeded from it and the item's index.
    With ``whole_batches`` the process takes every N-th batch whole (:class:`GlobalBatchSampler`).
    """
    state = context.accelerator.state
    seed = stable_seed(*epoch_seed) if epoch_seed else 0
    if epoch_seed:
        dataset = SeededItems(dataset, seed)
    return batch_loader(dataset, batch_size, shuffle=shuffle, seed=seed, rank=state.process_index,
                        world=state.num_processes, workers=context.recipe.train.num_workers,
                        whole_batches=whole_batches)


def batch_loader(dataset, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1,
                 workers: int = 0, whole_batches: bool = False) -> DataLoader | WorkerBatches:
    """Process ``rank``'s share (of ``world``) of ``dataset`` in global batches, collated by :func:`collate`.

    With ``workers`` the batches are collated in the worker processes and finished in this one
    (:mod:`mmadapt.worker_batches`): the same batches, fewer transfers between the processes.
    """
    sampler = GlobalBatchSampler(len(dataset), batch_size, shuffle=shuffle, seed=seed, rank=rank, world=world,
                                 whole_batches=whole_batches)
    if not workers:
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    return WorkerBatches(DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_in_worker, num_workers=workers))


def sharded_pass(
    context: RunContext,
    dataset,
    per_batch: Callable[[dict], dict[str, PerSample]],
    desc: str,
    stream: Callable[[dict[str, PerSample]], None] | None = None,
) -> dict[str, PerSample]:
    """``per_batch(batch)`` over this process's share of ``dataset``, gathered from every process.

    ``per_batch`` returns per-sample values including ``"index"``. The result holds them for every
    item (on the CPU) sorted by ``index``, so every process gets what a single process would. Empty
    when nothing was readable. With ``stream`` (one process only) each batch's result goes to
    ``stream`` at once and nothing is kept, so memory stays at one batch.
    """
    parts = []
    with torch.no_grad():
        # With exact shards each process computes whole batches: the same items in the same shapes, so the
        # same bits, on any process count.
        batches = loader(context, dataset, context.recipe.eval.batch_size, shuffle=False,
                         whole_batches=context.recipe.train.exact_shards > 0)
        for batch in tqdm(batches, desc=desc, disable=not context.is_main, leave=False):
            context.skipped.note(batch)
            if "index" not in batch:  # every image of the batch was unreadable and skipped
                continue
            result = {k: _to_cpu(v) for k, v in per_batch(batch).items()}
            feed_watchdog()
            if stream is not None:
                stream(result)
            else:
                parts.append(result)
    local = concatenate(parts)
    if context.num_processes > 1:
        from accelerate.utils import gather_object

        local = concatenate([shard for shard in gather_object([local]) if shard])
    context.merge_skipped()
    if not local:
        return {}
    order = torch.argsort(local["index"])
    return {k: v[order] if isinstance(v, torch.Tensor) else [v[i] for i in order.tolist()] for k, v in local.items()}


def concatenate(parts: list[dict[str, PerSample]]) -> dict[str, PerSample]:
    """Per-sample values of several batches (or processes) one after another: tensors joined, lists chained."""
    if not parts:
        return {}
    return {k: torch.cat([p[k] for p in parts]) if isinstance(parts[0][k], torch.Tensor)
            else [v for p in parts for v in p[k]] for k in parts[0]}


def per_sample(mapping: dict, key: str, where: str, size: int) -> PerSample:
    """``mapping[key]`` if it holds one value per item of the batch; a clear error otherwise."""
    value = mapping.get(key)
    if isinstance(value, list) and len(value) == size:
        return [v.detach() if isinstance(v, torch.Tensor) else v for v in value]
    if not isinstance(value, torch.Tensor):
        raise UserError(f"a metric of this recipe reads {key!r} from the {where}, which has no such tensor "
                        f"(keys: {', '.join(sorted(mapping))}); check eval.metrics against the adapter")
    if value.dim() == 0 or value.shape[0] != size:
        raise UserError(f"a metric of this recipe reads {key!r} from the {where} as one value per item, but "
                        f"its shape is {tuple(value.shape)} for a batch of {size}; a metric's `inputs` may "
                        "name only per-sample values")
    return value.detach()


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move every tensor of a batch (also those in lists: images of different sizes) to ``device``."""
    def move(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(device)
        if isinstance(value, list):
            return [move(v) for v in value]
        return value

    return {k: move(v) for k, v in batch.items()}


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def split_label(bundle: DataBundle, split: str | Split, fallback: str) -> str:
    """What a progress bar calls ``split``: its name in the run's data, else ``fallback`` (a stage, a prefix)."""
    if isinstance(split, str):
        return split
    own_name = next((name for name, own in bundle.splits.items() if own is split), None)
    return own_name or getattr(split, "name", None) or fallback
