"""One evaluation: the adapter over a split, its outputs fed to metric objects, the same numbers in every process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from .metrics import Metric
from .passes import PerSample, per_sample, sharded_pass, to_device

if TYPE_CHECKING:
    from .adapter import Adapter
    from .data import Split, Task
    from .run_context import RunContext


def evaluate_split(context: RunContext, adapter: Adapter, dataset: Split, metrics: list[Metric],
                   prefix: str) -> dict[str, float]:
    """``{"<prefix>/<metric>": value}`` of ``metrics`` (reset) over ``dataset`` (collective)."""
    inputs = [getattr(metric, "inputs", Metric.inputs) for metric in metrics]
    output_keys = sorted({k for wanted in inputs for k in wanted.get("outputs", ())})
    batch_keys = sorted({k for wanted in inputs for k in wanted.get("batch", ())})
    adapter.eval()

    def per_batch(batch: dict) -> dict[str, PerSample]:
        batch = to_device(batch, context.accelerator.device)
        with context.accelerator.autocast():
            outputs = _half_to_fp32(adapter(batch))
        size = len(batch["index"])
        return {"index": batch["index"],
                **{f"outputs.{k}": per_sample(outputs, k, "adapter outputs", size) for k in output_keys},
                **{f"batch.{k}": per_sample(batch, k, "batch", size) for k in batch_keys}}

    def feed(chunk: dict[str, PerSample]) -> None:
        outputs = {k[len("outputs."):]: v for k, v in chunk.items() if k.startswith("outputs.")}
        batch = {k[len("batch."):]: v for k, v in chunk.items() if k.startswith("batch.")}
        for metric in metrics:
            metric.update(outputs, batch)

    # One process feeds the metrics batch by batch; several gather the whole split first.
    stream = feed if context.num_processes == 1 else None
    gathered = sharded_pass(context, dataset, per_batch, f"eval {prefix}", stream=stream)
    size = context.recipe.eval.batch_size
    for start in range(0, len(gathered.get("index", ())), size):
        feed({k: v[start : start + size] for k, v in gathered.items()})
    return {f"{prefix}/{k}": float(v) for metric in metrics for k, v in metric.compute().items()}


def fresh_metrics(context: RunContext, metrics: list[Metric] | None) -> list[Metric]:
    """The recipe's ``eval.metrics`` newly built, or the given metric objects reset."""
    if metrics is None:
        return [section.build() for section in context.recipe.metrics]
    for metric in metrics:
        if not all(callable(getattr(metric, name, None)) for name in ("reset", "update", "compute")):
            raise TypeError(f"run.evaluate(metrics=...) takes metric objects (reset/update/compute); "
                            f"got {type(metric).__name__}")
        metric.reset()
    return list(metrics)


@contextmanager
def serving(adapter: Adapter, task: Task | None) -> Iterator[None]:
    """The adapter serves ``task`` inside the block and its previous task after it."""
    previous = adapter.task
    if task is None or task is previous:
        yield
        return
    adapter.set_task(task)
    try:
        yield
    finally:
        adapter.set_task(previous)


def _half_to_fp32(outputs: dict) -> dict:
    """Outputs with fp16/bf16 tensors in fp32: metrics (PSNR, SSIM, ranking ties) are computed at full precision."""
    return {key: value.float() if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16)
            else value for key, value in outputs.items()}
