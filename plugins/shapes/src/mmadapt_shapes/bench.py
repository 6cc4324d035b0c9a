"""``adapt bench shapes``: images per second of the ShapesWorld generator (sampling and rendering) on one thread.

No baseline to race: it prints the throughput and returns no ratio.
"""

from __future__ import annotations

import argparse
import time

from .world import item_rng, render, sample_scene


def benchmark_generator(n: int = 2000, size: int = 64, seed: int = 0) -> float:
    """Return images per second for sampling + rendering ``n`` scenes on the current thread.

    Caches are warmed first, so the number reflects steady-state throughput. One scene in four has
    2-4 objects, as in pretraining.
    """
    for i in range(200):
        render(sample_scene(item_rng(seed, 99, i), count=1 + i % 4), size)
    start = time.perf_counter()
    for i in range(n):
        render(sample_scene(item_rng(seed, 0, i), count=1 + (i % 4 == 3) * int(i % 3 + 1)), size)
    return n / (time.perf_counter() - start)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench shapes``."""
    parser.add_argument("--n", type=int, default=2000, help="scenes to sample and render (default 2000)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Print the generator's images per second; there is no ratio to return."""
    print(f"{benchmark_generator(args.n, args.size):.0f} images/s ({args.size}x{args.size})")
    return {}
