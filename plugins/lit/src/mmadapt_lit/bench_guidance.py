"""The race of ``adapt bench lit --part guidance``: RAVE and CLIP-LIT to the same held-out guidance target.

Both train the same network from the same weights with the ShapesWorld recipes' rates (Adam 5e-4,
weight decay 1e-3), batch 4, and CLIP-LIT's schedule of the ShapesWorld recipe (prompt init ``--prompt-init``
iterations of 16, then rounds of 60 enhancement and 40 prompt iterations); only what a method
computes to train is timed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from .losses import clip_loss, guidance_loss, ranking_loss, residual_vector
from .stages import cycled

BATCH = 4
PROMPT_INIT_BATCH = 16
ROUND = (60, 40)
HELD_OUT = 16


class Clock:
    """Seconds spent inside ``timed`` blocks."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, work: Callable[[], object]) -> object:
        """Run ``work`` and add its wall time."""
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.seconds += time.perf_counter() - started


def _pairs(split, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    items = [split[i] for i in range(count)]
    return torch.stack([item["image"] for item in items]), torch.stack([item["target"] for item in items])


def _batches(count: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from torch.randperm(count, generator=generator).split(BATCH)


def rave_step(adapter, optimizer, images) -> Callable[[], None]:
    """One RAVE training step of ``adapter`` on ``images`` (the ShapesWorld recipe's loss weights)."""

    def step() -> None:
        out = adapter.enhance(images)
        loss = 1920.0 * guidance_loss(adapter.embed(out), adapter.residual, adapter.residual_target)
        (loss + 22.5 * adapter.identity(out, images)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def race(backbone, args: argparse.Namespace) -> dict:
    """Train RAVE, then CLIP-LIT, each until the target or ``args.max_steps``; their times, steps and cosines."""
    from mmadapt import PairedTransform, Task, validate_section

    from .adapter import ClipLitAdapter, RaveAdapter
    from .config import ClipLitConfig, RaveConfig

    data = validate_section(
        "dataset",
        {"name": "shapes", "task": "backlit-pairs", "train_size": args.train_size, "test_size": HELD_OUT},
        where="data",
    ).build()
    transform = PairedTransform("none")
    backlit, well_lit = _pairs(data.split("train").with_transform(transform), args.train_size)
    held_out, _ = _pairs(data.split("test").with_transform(transform), HELD_OUT)
    task = Task([], kind="image-to-image")
    torch.manual_seed(0)
    rave = RaveAdapter(RaveConfig(network=args.network), backbone, task)
    clip_lit = ClipLitAdapter(ClipLitConfig(network=args.network), backbone, task)
    clip_lit.network.load_state_dict(rave.network.state_dict())

    clock = Clock()
    with torch.no_grad():
        found = clock.timed(lambda: residual_vector(rave.embed(well_lit), rave.embed(backlit)))
    residual, t = found["residual"], found["target"]
    rave.set_residual(residual, t)

    def held_out_cos(adapter) -> float:
        adapter.eval()
        with torch.no_grad():
            value = float((adapter.embed(adapter.enhance(held_out)) @ residual).mean())
        adapter.train()
        return value

    with torch.no_grad():
        cos_input = float((rave.embed(held_out) @ residual).mean())
    goal = cos_input + args.closing * (float(t) - cos_input)
    results = {"cos_input": cos_input, "t": float(t)}

    optimizer = torch.optim.Adam(rave.network.parameters(), lr=5e-4, weight_decay=1e-3)
    order = _batches(len(backlit), 1)
    rave.train()
    rave_step = _rave_step(rave, optimizer, backlit, order)
    results["rave"] = _train_until(rave_step, lambda: held_out_cos(rave), goal, clock, args)
    results["clip-lit"] = _clip_lit(clip_lit, backlit, well_lit, lambda: held_out_cos(clip_lit), goal, args)
    return results


def _train_until(
    step: Callable[[], None],
    cos: Callable[[], float],
    goal: float,
    clock: Clock,
    args: argparse.Namespace,
    steps: int = 0,
    budget: int | None = None,
) -> dict:
    """Timed ``step`` calls with untimed checks until ``cos() >= goal``, ``budget`` steps, or ``max_steps`` in all."""
    stop = args.max_steps if budget is None else min(args.max_steps, steps + budget)
    value = cos()
    while value < goal and steps < stop:
        clock.timed(step)
        steps += 1
        if steps % args.check_every == 0 or steps == stop:
            value = cos()
    return {"seconds": clock.seconds, "steps": steps, "cos": value, "reached": value >= goal}


def _clip_lit(
    adapter,
    backlit: torch.Tensor,
    well_lit: torch.Tensor,
    cos: Callable[[], float],
    goal: float,
    args: argparse.Namespace,
) -> dict:
    """CLIP-LIT's stages until the target: feature pass, prompt init, rounds of enhancement and refinement."""
    clock = Clock()
    with torch.no_grad():
        features = clock.timed(lambda: (adapter.embed(backlit), adapter.embed(well_lit)))
    labelled = torch.cat(features)
    labels = torch.tensor([0] * len(backlit) + [1] * len(well_lit))
    prompts = torch.optim.Adam([adapter.prompts], lr=5e-4, weight_decay=1e-3)
    network = torch.optim.Adam(adapter.network.parameters(), lr=5e-4, weight_decay=1e-3)
    generator = torch.Generator().manual_seed(2)

    def init_step() -> None:
        pick = torch.randint(len(labelled), (PROMPT_INIT_BATCH,), generator=generator)
        logits = 100.0 * labelled[pick] @ adapter.prompt_features().t()
        torch.nn.functional.cross_entropy(logits, labels[pick]).backward()
        prompts.step()
        prompts.zero_grad(set_to_none=True)

    for _ in range(args.prompt_init):
        clock.timed(init_step)
    order = _batches(len(backlit), 1)
    cached: list[torch.Tensor] = []
    result = {"seconds": clock.seconds, "steps": 0, "cos": cos(), "reached": False}
    while result["steps"] < args.max_steps:
        with torch.no_grad():
            text = adapter.prompt_features()
        enhance_step = _clip_lit_step(adapter, network, backlit, order, text)
        result = _train_until(enhance_step, cos, goal, clock, args, result["steps"], ROUND[0])
        if result["reached"]:
            break

        def refresh() -> None:
            adapter.eval()
            with torch.no_grad():
                cached.insert(0, adapter.embed(adapter.enhance(backlit)))
            adapter.train()
            del cached[2:]

        clock.timed(refresh)
        ranked = torch.stack([features[0], cycled(features[1], len(backlit)), *cached], dim=1)
        refine_step = _refine_step(adapter, prompts, ranked, generator)
        for _ in range(ROUND[1]):
            clock.timed(refine_step)
        result["seconds"] = clock.seconds
    return result


def _rave_step(adapter, optimizer, backlit: torch.Tensor, order) -> Callable[[], None]:
    def step() -> None:
        rave_step(adapter, optimizer, backlit[next(order)])()

    return step


def _clip_lit_step(adapter, optimizer, backlit: torch.Tensor, order, text: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        images = backlit[next(order)]
        out = adapter.enhance(images)
        loss = 320.0 * clip_loss(adapter.embed(out), text) + 22.5 * adapter.identity(out, images)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _refine_step(adapter, optimizer, ranked: torch.Tensor, generator) -> Callable[[], None]:
    cached = ranked.shape[1] - 2

    def step() -> None:
        pick = torch.randint(len(ranked), (8,), generator=generator)
        negative = (100.0 * ranked[pick] @ adapter.prompt_features().t()).softmax(-1)[..., 0]
        (200.0 * ranking_loss(negative, cached)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step
