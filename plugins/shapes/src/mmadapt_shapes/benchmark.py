"""Generator throughput (``python -m mmadapt_shapes.benchmark``)."""

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


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="Measure ShapesWorld images per second on one thread.")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--size", type=int, default=64)
    a = p.parse_args(argv)
    print(f"{benchmark_generator(a.n, a.size):.0f} images/s ({a.size}x{a.size})")


if __name__ == "__main__":
    main()
