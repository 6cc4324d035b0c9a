"""Timing one method's training step: step time, images/s, peak memory, FLOPs, achieved TFLOP/s and MFU.

A plugin describes a step as a :class:`TrainingStep` (its adapter, a batch on the device and the loss
of one step); ``adapt bench gpu`` measures it with :func:`measure_training_step` under each precision,
with and without ``torch.compile``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: Vendors' dense peak TFLOP/s (no sparsity) per card, for bf16 tensor cores and for fp32 run as TF32
#: tensor-core matmuls. The first name contained in ``torch.cuda.get_device_name()`` applies.
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200 NVL", {"bf16": 835.5, "fp32": 417.5}),
    ("H200", {"bf16": 989.4, "fp32": 494.7}),
    ("H100 NVL", {"bf16": 835.5, "fp32": 417.5}),
    ("H100 PCIe", {"bf16": 756.0, "fp32": 378.0}),
    ("H100", {"bf16": 989.4, "fp32": 494.7}),
    ("A100", {"bf16": 312.0, "fp32": 156.0}),
)
#: Autocast dtype of each precision ``measure_training_step`` takes (fp32: no autocast).
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class TrainingStep:
    """One method's training step, ready to time.

    ``model`` is the adapter (its parameters with ``requires_grad`` train); ``batch`` is on the device
    ``model`` is on; ``loss(model, batch)`` runs the forward pass and returns the scalar loss, calling
    ``model`` (which may be the ``torch.compile`` of the adapter) rather than the adapter itself;
    ``images`` is how many images one step processes.
    """

    model: nn.Module
    batch: dict[str, Any]
    loss: Callable[[nn.Module, dict[str, Any]], torch.Tensor]
    images: int

    @classmethod
    def classification(cls, build_adapter: Callable[[Any], nn.Module], backbone: nn.Module, batch_size: int,
                       classes: int) -> TrainingStep:
        """A cross-entropy step of ``build_adapter(task)`` on random images of ``backbone``'s input size.

        The task has ``classes`` classes; the adapter and the batch go to ``backbone``'s device.
        """
        from .data import Task

        device = next(backbone.parameters()).device
        adapter = build_adapter(Task([f"class {i}" for i in range(classes)])).to(device)
        size = backbone.preprocessing.size
        batch = {"image": torch.randn(batch_size, 3, size, size, device=device),
                 "label": torch.randint(0, classes, (batch_size,), device=device)}
        return cls(adapter, batch, _cross_entropy, batch_size)


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The card's dense peak TFLOP/s for ``precision`` (bf16, or fp32 as TF32), or None for an unlisted card."""
    for name, peaks in PEAK_TFLOPS:
        if name.lower() in device_name.lower():
            return peaks[precision]
    return None


def measure_training_step(step: TrainingStep, precision: str = "fp32", compile: bool = False, steps: int = 5,
                          warmup: int = 2) -> dict[str, Any]:
    """Time ``steps`` SGD steps of ``step`` after ``warmup`` untimed ones (compilation happens there).

    ``precision`` is ``fp32`` (on CUDA with TF32 matmuls, as its peak assumes) or ``bf16`` (autocast).
    Returns ``step_s`` (mean), ``images_per_s``, ``peak_memory_gib`` (CUDA only, else None), ``flops``
    (one step's forward and backward, counted by ``torch.utils.flop_counter`` without compilation),
    ``achieved_tflops``, ``peak_tflops`` and ``mfu`` (the two None off a listed CUDA card).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    device = next(step.model.parameters()).device
    cuda = device.type == "cuda"
    trained = [p for p in step.model.parameters() if p.requires_grad]
    if not trained:
        raise ValueError(f"{type(step.model).__name__} has no trainable parameters to time")
    optimizer = torch.optim.SGD(trained, lr=1e-6)
    model = torch.compile(step.model) if compile else step.model
    dtype = PRECISIONS[precision]
    matmul_precision = torch.get_float32_matmul_precision()
    if cuda:
        torch.set_float32_matmul_precision("high" if precision == "fp32" else matmul_precision)

    def one_step(module: nn.Module) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
            loss = step.loss(module, step.batch)
        loss.backward()
        optimizer.step()

    try:
        step.model.train()
        flops = _counted_flops(lambda: one_step(step.model))
        for _ in range(warmup):
            one_step(model)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        for _ in range(steps):
            one_step(model)
        if cuda:
            torch.cuda.synchronize(device)
        step_s = (time.perf_counter() - start) / steps
    finally:
        torch.set_float32_matmul_precision(matmul_precision)
    achieved = flops / step_s / 1e12
    peak = peak_tflops(torch.cuda.get_device_name(device), precision) if cuda else None
    return {
        "precision": precision,
        "compile": compile,
        "step_s": step_s,
        "images_per_s": step.images / step_s,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
        "flops": flops,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "mfu": achieved / peak if peak else None,
    }


def _counted_flops(run: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return int(counter.get_total_flops())


def _cross_entropy(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch)["logits"].float(), batch["label"])
