"""``adapt bench ept``: one training step of vanilla prompt tuning (length l), DePT (m, r) and EPT (m, r)
at about the same prompt + low-rank budget, timed in one process on the same batch.

All three are this plugin's adapters on the same randomly initialised open_clip model, in fp32, with
SGD (Dassl's settings): vanilla is ``rank: 0`` with fusion and projection off, DePT has both switches
off, EPT both on. ``--variant text`` trains text prompts on cached image features with the text cut
after the longest end token (``truncate: true``, so the shorter prompt saves positions);
``--variant visual`` trains visual prompts through the image tower.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

#: Class names of the text variant: realistic, several of more than one token.
CLASSNAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
)


def matched_rank(length: int, short: int, width: int, positions: int) -> int:
    """The rank r whose offset (s·r + r·d) best makes up the (l − m)·d parameters the shorter prompt drops."""
    return max(1, round((length - short) * width / (positions + width)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench ept``."""
    parser.add_argument("--variant", choices=("text", "visual"), default="text",
                        help="text prompts (ept) or visual prompts (ept-visual) (default text)")
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random weights (default ViT-B-16)")
    parser.add_argument("--classes", type=int, default=40, help="number of classes (default 40)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    parser.add_argument("--length", type=int, default=None,
                        help="l, the vanilla prompt's tokens (default 16 text, 20 visual)")
    parser.add_argument("--short", type=int, default=None, help="m, the decomposed prompt's tokens (default l / 2)")
    parser.add_argument("--rank", type=int, default=None,
                        help="r of DePT and EPT (default: the rank closest to the vanilla prompt's budget)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed steps of each kind; the median is reported (default 1)")


def sgd_step(adapter, batch: dict, labels) -> Callable[[], None]:
    """One SGD step (lr 0.002, momentum 0.9, weight decay 5e-4) of ``adapter`` on ``batch``."""
    import torch
    import torch.nn.functional as F

    params = [p for group in adapter.parameter_groups().values() for p in group]
    optimizer = torch.optim.SGD(params, lr=0.002, momentum=0.9, weight_decay=5e-4)

    def step() -> None:
        F.cross_entropy(adapter(batch)["logits"], labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main(args: argparse.Namespace) -> dict[str, float]:
    """Build the model and the three adapters, time ``args.repeats`` steps of each after a warm-up step,
    print the times and budgets and return the ratios (``adapt bench`` prints them)."""
    import torch
    from mmadapt import Task, UserError, random_openclip_backbone

    from .config import EptConfig, EptVisualConfig
    from .text import Ept
    from .visual import EptVisual

    visual = args.variant == "visual"
    length = args.length or (20 if visual else 16)
    short = args.short or length // 2
    if min(args.classes, args.batch_size, args.repeats, length, short, args.threads or 1) < 1 or short >= length:
        raise UserError("--classes, --batch-size, --repeats, --length, --short and --threads must be at least 1, "
                        "and --short below --length")
    backbone = random_openclip_backbone(args.arch, args.threads)
    names = [CLASSNAMES[i % len(CLASSNAMES)] + (f" {i}" if i >= len(CLASSNAMES) else "") for i in range(args.classes)]
    task = Task(names, templates=["a photo of a {}."])
    size = backbone.preprocessing.size
    pixels = torch.randn(args.batch_size, 3, size, size)
    labels = torch.randint(0, args.classes, (args.batch_size,))
    if visual:
        config, build, batch = EptVisualConfig, EptVisual, {"image": pixels}
    else:
        with torch.no_grad():
            batch = {"image_features": backbone.encode_image(pixels).float()}
        config, build = EptConfig, Ept
    settings = {"vanilla": dict(n_ctx=length, rank=0, fusion=False, projection=False),
                "dept": dict(n_ctx=short, fusion=False, projection=False), "ept": dict(n_ctx=short)}
    if not visual:
        for options in settings.values():
            options["truncate"] = True
    adapters = {}
    for name, options in settings.items():
        if name != "vanilla":
            # The offset's length s depends on the setting (with fusion and truncation: the longest prompt).
            probe = build(config(**{**options, "rank": 1}), backbone, task).parts.offset
            positions, width = probe.length, probe.B.shape[1]
            options["rank"] = args.rank or matched_rank(length, short, width, positions)
        adapters[name] = build(config(**options), backbone, task).train()
    steps = {name: sgd_step(adapter, batch, labels) for name, adapter in adapters.items()}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up: thread pools and kernels start outside the timed steps
    for index in range(args.repeats):
        for name, step in steps.items():
            print(f"  step {index + 1}/{args.repeats}: {name} ...", flush=True)
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"adapt bench ept: {args.variant} prompts, {args.arch} (random weights), {args.classes} classes, "
          f"batch {args.batch_size}, fp32, {torch.get_num_threads()} CPU threads, median of {args.repeats}")
    for name, adapter in adapters.items():
        counts, config_of = adapter.parameter_counts(), adapter.config
        print(f"  {name:8s} m={config_of.n_ctx:3d} r={config_of.rank:3d}  budget {counts['decomposed_budget']:7,d}"
              f" (+{counts['ept_extras']:,d} EPT extras)  {median[name]:8.3f} s per step")
    return {"vanilla / dept": median["vanilla"] / median["dept"], "vanilla / ept": median["vanilla"] / median["ept"]}
