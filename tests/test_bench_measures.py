"""The measurements ``adapt bench`` benchmarks share: activation memory counted without running a step."""

from __future__ import annotations

import torch
from mmadapt import activation_bytes, format_gib, measure_steps, wall_and_cpu_seconds
from torch import nn


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 8))


def test_dropping_each_saved_tensor_counts_what_keeping_them_counts():
    model, inputs = small_model(), torch.randn(16, 32)
    parameters = list(model.parameters())
    dropped = activation_bytes(lambda: model(inputs).sum(), parameters)
    kept = activation_bytes(lambda: model(inputs).sum(), parameters, keep=True)
    assert dropped == kept > 0


def test_parameters_are_not_counted_and_the_count_grows_with_the_batch():
    model = small_model()
    parameters = list(model.parameters())
    small = activation_bytes(lambda: model(torch.randn(16, 32)).sum(), parameters)
    large = activation_bytes(lambda: model(torch.randn(64, 32)).sum(), parameters)
    weights = sum(p.numel() * p.element_size() for p in parameters)
    # Saved for backward: the input (16 x 32), the hidden pre- and post-activation (16 x 64 each).
    assert small == 4 * 16 * (32 + 64 + 64) and weights > 0
    assert large == 4 * small


def test_wall_and_cpu_seconds_and_gib():
    wall, cpu = wall_and_cpu_seconds(lambda: sum(i * i for i in range(200_000)))
    assert wall > 0 and cpu > 0
    assert format_gib(3 * 2**30) == "3.00 GiB"


def test_measure_steps_counts_every_variant_and_times_those_that_run():
    model = small_model()
    calls = {"a": 0, "b": 0}

    def step_of(name, rows):
        def step():
            calls[name] += 1
            model(torch.randn(rows, 32)).sum().backward()
        return step

    steps = {"a": step_of("a", 64), "b": step_of("b", 16)}
    losses = {"a": lambda: model(torch.randn(64, 32)).sum(), "b": lambda: model(torch.randn(16, 32)).sum()}
    measures = measure_steps(steps, losses, model.parameters(), repeats=3)
    assert calls == {"a": 3, "b": 3}
    assert set(measures.wall) == set(measures.cpu) == {"a", "b"}
    ratios = measures.ratios([("a", "b")])
    assert ratios["a / b, memory"] == 4.0
    assert set(ratios) == {"a / b", "a / b, CPU time", "a / b, memory"}
