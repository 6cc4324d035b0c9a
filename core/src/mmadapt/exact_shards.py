"""Training steps that are the same bits on any process count: each global batch in fixed shards whose
gradients are summed in shard order (``train.exact_shards``).

With ``train.exact_shards: K`` a global batch of B items is K shards of B / K items: shard k holds the
batch's items k, k + K, k + 2K, ... Each shard's gradient is computed on its own, the K gradients are
summed in shard order and divided by K: the gradient of the batch mean, as K data-parallel parts would
average it. Process r of N (N dividing K) is given the batch's items r, r + N, ... (the engine's batch
sampler), which are exactly shards r, r + N, ...; it computes their gradients, every process gathers
all K of them and sums them in the same order as one process does. Every float sum of a step then
happens in the same order on any process count, so the weights are the same bits after every step,
given the same number of threads per process (a kernel splits its own sums by thread).

The cost: K smaller forward and backward passes per batch instead of one, and K gradient copies
(K x the trained parameters) gathered on every process instead of one all-reduce.
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import UserError


def local_shards(size: int, shards: int, num_processes: int) -> list[list[int]]:
    """The positions, in this process's share of a global batch (``size`` items), of each of its shards,
    in shard order: with ``K / N`` shards per process, its q-th shard holds positions q, q + K / N, ..."""
    per_process = shards // num_processes
    if size % per_process:
        raise UserError(
            f"train.exact_shards={shards}: a batch share of {size} items on this process does not split into "
            f"{per_process} shards; unreadable images skipped with data.on_bad_image=skip leave uneven batches, "
            "which exact shards cannot sum in a fixed order (set train.exact_shards=0 or fix the images)"
        )
    return [list(range(q, size, per_process)) for q in range(per_process)]


def shard_of(batch: dict[str, Any], positions: list[int], size: int) -> dict[str, Any]:
    """The items at ``positions`` of a batch of ``size`` items: every per-item tensor and list, in that order."""
    rows = torch.tensor(positions)

    def pick(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == size:
            return value[rows.to(value.device)]
        if isinstance(value, list) and len(value) == size:
            return [value[i] for i in positions]
        return value

    return {**{key: pick(value) for key, value in batch.items()}, "skipped": 0, "skipped_keys": []}


def refuse_batch_statistics(model: torch.nn.Module) -> None:
    """A ``UserError`` when a module in training mode keeps running batch statistics (BatchNorm): they
    would be updated once per shard, K / N times on each process, and differ by process count."""
    for name, module in model.named_modules():
        if module.training and getattr(module, "track_running_stats", False):
            raise UserError(
                f"train.exact_shards: module {name or type(module).__name__} ({type(module).__name__}) trains with "
                "running batch statistics, which each shard would update on its own process; set "
                "train.exact_shards=0, or keep the module in eval mode while training"
            )


class ShardGradients:
    """The gradients of this process's shards, one flat row each, summed over every process in shard order."""

    def __init__(self, parameters: list[torch.nn.Parameter], shards: int, num_processes: int) -> None:
        self.parameters, self.shards, self.num_processes = parameters, shards, num_processes
        self.rows: list[torch.Tensor] = []
        # Gradients of earlier micro-batches (train.grad_accum) wait aside while the shards' are taken.
        self.held = [p.grad for p in parameters]
        for p in parameters:
            p.grad = None

    def keep(self) -> None:
        """Take the gradients the last shard's backward left in ``.grad`` (and clear them)."""
        self.rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                    for p in self.parameters]))
        for p in self.parameters:
            p.grad = None

    def add_to_grads(self, divisor: int) -> None:
        """Add the sum of every shard's gradient, in shard order, divided by ``divisor``, to ``.grad``.

        Collective when there are several processes: every process gathers every shard's row.
        """
        local = torch.stack(self.rows)
        self.rows = []
        per_process = len(local)
        if self.num_processes > 1:
            gathered = [torch.empty_like(local) for _ in range(self.num_processes)]
            torch.distributed.all_gather(gathered, local.contiguous())
            # Shard k is row k // N of process k % N.
            rows = [gathered[k % self.num_processes][k // self.num_processes] for k in range(self.shards)]
        else:
            rows = list(local)
        if len(rows) != self.shards or per_process * self.num_processes != self.shards:
            raise RuntimeError(f"exact shards: {len(rows)} shard gradients for {self.shards} shards")
        total = rows[0].clone()
        for row in rows[1:]:
            total += row
        total /= divisor
        offset = 0
        for p, held in zip(self.parameters, self.held):
            part = total[offset: offset + p.numel()].view_as(p)
            offset += p.numel()
            p.grad = part.clone() if held is None else held + part
