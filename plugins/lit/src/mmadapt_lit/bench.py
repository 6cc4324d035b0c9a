"""``adapt bench lit``: training-step time of each enhancement network, and RAVE vs CLIP-LIT time to a guidance target.

``--part networks``: one RAVE training step (network forward and backward, guidance and identity
losses through the frozen tower) per network at each ``--sizes`` side, batch 1, timed side by side;
the ratios are CLIP-LIT's network against each other network.

``--part guidance``: RAVE and CLIP-LIT train the same network from the same initial weights on the same
ShapesWorld backlit pairs, one after the other in this process. The guidance target is reached when
the mean cos(Φ(output), v_res) of held-out inputs has closed ``--closing`` of its gap to t. RAVE's
clock includes its residual pass; CLIP-LIT's its feature pass, prompt initialisation and prompt
rounds. Checks every ``--check-every`` enhancement steps are not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

NETWORK_NAMES = ("clip-lit-net", "zero-dce", "zero-dce++", "unet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench lit``."""
    parser.add_argument(
        "--part",
        choices=("networks", "guidance", "both"),
        default="networks",
        help="network step times, RAVE vs CLIP-LIT time to target, or both (default networks)",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[256, 512],
        help="image sides of the network part (default 256 512, about a minute on a CPU; larger: --sizes 512 1024)",
    )
    parser.add_argument(
        "--networks",
        nargs="+",
        choices=NETWORK_NAMES,
        default=list(NETWORK_NAMES),
        help="networks of the network part (default all)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per network and size; median (default 1)")
    parser.add_argument(
        "--network",
        choices=NETWORK_NAMES,
        default="clip-lit-net",
        help="the enhancer both methods train in the guidance part (default clip-lit-net)",
    )
    parser.add_argument(
        "--closing",
        type=float,
        default=0.5,
        help="fraction of the gap between cos(Φ(input), v_res) and t to close (default 0.5)",
    )
    parser.add_argument("--max-steps", type=int, default=240, help="enhancement steps at most per method (default 240)")
    parser.add_argument("--check-every", type=int, default=10, help="enhancement steps between checks (default 10)")
    parser.add_argument(
        "--prompt-init",
        type=int,
        default=200,
        help="CLIP-LIT's prompt-initialisation iterations in the race (default 200, the recipe's)",
    )
    parser.add_argument("--train-size", type=int, default=64, help="ShapesWorld training pairs (default 64)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Run the chosen parts, print what was measured, return the ratios."""
    import torch
    from mmadapt import UserError, validate_section

    if (
        min(
            args.repeats,
            args.max_steps,
            args.check_every,
            args.train_size,
            args.prompt_init,
            *args.sizes,
            args.threads or 1,
        )
        < 1
    ):
        raise UserError(
            "--repeats, --max-steps, --check-every, --train-size, --prompt-init, --sizes and --threads must be >= 1"
        )
    if not 0.0 < args.closing <= 1.0:
        raise UserError(f"--closing must be in (0, 1]; got {args.closing}")
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = validate_section("backbone", {"name": "shapes-clip"}, where="backbone").build()
    ratios: dict[str, float] = {}
    if args.part in ("networks", "both"):
        ratios.update(network_steps(backbone, args.networks, args.sizes, args.repeats))
    if args.part in ("guidance", "both"):
        ratios.update(time_to_target(backbone, args))
    return ratios


def _adam(parameters) -> object:
    import torch

    return torch.optim.Adam(parameters, lr=5e-4, weight_decay=1e-3)


def network_steps(backbone, networks: list[str], sizes: list[int], repeats: int) -> dict[str, float]:
    """Median time of one RAVE training step per network and size; ratios against ``clip-lit-net``."""
    import torch
    import torch.nn.functional as F
    from mmadapt import Task

    from .adapter import RaveAdapter
    from .bench_guidance import rave_step
    from .config import RaveConfig

    task = Task([], kind="image-to-image")
    times: dict[tuple[str, int], float] = {}
    for name in networks:
        torch.manual_seed(0)
        adapter = RaveAdapter(RaveConfig(network=name), backbone, task).train()
        adapter.set_residual(F.normalize(torch.randn(backbone.embed_dim), dim=0), torch.tensor(0.3))
        optimizer = _adam(adapter.network.parameters())
        for size in sizes:
            step = rave_step(adapter, optimizer, torch.rand(1, 3, size, size))
            step()  # warm-up: allocations and kernels outside the timed steps
            measured = []
            for _ in range(repeats):
                started = time.perf_counter()
                step()
                measured.append(time.perf_counter() - started)
            times[name, size] = statistics.median(measured)
            print(f"  {name:13s} {size:5d}²  {times[name, size]:8.3f} s per step", flush=True)
    print(
        f"adapt bench lit networks: RAVE step, batch 1, shapes-clip, {torch.get_num_threads()} threads, "
        f"median of {repeats}"
    )
    return {
        f"{'clip-lit-net'} / {name} @{size}": times["clip-lit-net", size] / times[name, size]
        for name, size in times
        if name != "clip-lit-net" and ("clip-lit-net", size) in times
    }


def time_to_target(backbone, args: argparse.Namespace) -> dict[str, float]:
    """Wall time of RAVE and of CLIP-LIT until the held-out guidance target; their ratio."""
    from .bench_guidance import race

    found = race(backbone, args)
    rave, clip_lit = found["rave"], found["clip-lit"]
    for name, result in (("rave", rave), ("clip-lit", clip_lit)):
        reached = "reached" if result["reached"] else f"NOT reached in {args.max_steps} steps"
        print(
            f"  {name:9s} {result['seconds']:8.1f} s, {result['steps']:4d} enhancement steps, target {reached}; "
            f"cos {result['cos']:.3f} (input {found['cos_input']:.3f}, target t {found['t']:.3f})"
        )
    print(
        f"adapt bench lit guidance: {args.network}, ShapesWorld backlit-pairs ({args.train_size} pairs, 64²), "
        f"closing {args.closing:.0%} of the gap to t"
    )
    both = rave["reached"] and clip_lit["reached"]
    key = "clip-lit / rave time to target" if both else "clip-lit / rave time (target not reached by both)"
    return {key: clip_lit["seconds"] / rave["seconds"]}
