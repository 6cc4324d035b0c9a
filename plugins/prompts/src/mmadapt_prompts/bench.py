"""``adapt bench prompts``: one training step of our coop against a reference CoOp step, side by side.

Both train the same context on the same batch of the same randomly initialised open_clip model with
SGD, in fp32. The reference step is CoOp's own (:mod:`.reference`): image encoder on the pixels
and a 77-position text pass every step. Ours is what ``adapt run`` does with ``augment: none``:
image features cached once by the engine (their one-time cost is printed separately), the text
sequence cut after the longest prompt's end token.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

#: CIFAR-100's classes: realistic names, several of them more than one token ("aquarium_fish").
CLASSNAMES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)


def classnames(count: int) -> list[str]:
    """``count`` class names: CIFAR-100's, then the same again with a number ("apple 2") if more are asked."""
    return [CLASSNAMES[i % len(CLASSNAMES)] + (f" {i // len(CLASSNAMES) + 1}" if i >= len(CLASSNAMES) else "")
            for i in range(count)]


def seconds(step: Callable[[], None]) -> float:
    """Wall time of one call."""
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


@dataclass
class Steps:
    """One training step of each kind on the same batch, both starting from the same context."""

    reference: Callable[[], None]
    ours: Callable[[], None]
    #: Text positions our step runs (the reference runs all ``context_length``).
    positions: int
    #: Seconds to compute the batch's image features once (the engine's cache).
    cache_s: float


def build_steps(backbone, names: list[str], pixels, labels, n_ctx: int) -> Steps:
    """SGD steps (Dassl's settings) of our coop and of the reference CoOp on ``pixels`` and ``labels``."""
    import torch
    import torch.nn.functional as F
    from mmadapt import Task

    from .config import CoopConfig
    from .coop import Coop
    from .reference import ReferenceCoop

    ours = Coop(CoopConfig(n_ctx=n_ctx), backbone, Task(names)).train()
    reference = ReferenceCoop(backbone, names, ours.prompt.ctx).train()
    started = time.perf_counter()
    with torch.no_grad():
        batch = {"image_features": backbone.encode_image(pixels).float(), "label": labels}
    cache_s = time.perf_counter() - started

    def sgd_step(param, logits_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.SGD([param], lr=0.002, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            F.cross_entropy(logits_of(), labels).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    return Steps(
        reference=sgd_step(reference.ctx, lambda: reference(pixels)),
        ours=sgd_step(ours.prompt.ctx, lambda: ours(batch)["logits"]),
        positions=ours.prompt().shape[1],
        cache_s=cache_s,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench prompts``."""
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random weights (default ViT-B-16)")
    parser.add_argument("--classes", type=int, default=100, help="number of classes (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    parser.add_argument("--n-ctx", type=int, default=16, help="context tokens (default 16, CoOp's)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed steps of each kind; the median is reported (default 1)")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Build the model, time ``args.repeats`` steps of each kind after a small warm-up, print both times
    and return the ratio (``adapt bench`` prints it)."""
    import torch
    from mmadapt import UserError, random_openclip_backbone

    if min(args.classes, args.batch_size, args.repeats, args.n_ctx, args.threads or 1) < 1:
        raise UserError("--classes, --batch-size, --repeats, --n-ctx and --threads must be at least 1")
    backbone = random_openclip_backbone(args.arch, args.threads)
    names = classnames(args.classes)
    size = backbone.preprocessing.size
    pixels = torch.randn(args.batch_size, 3, size, size)
    labels = torch.randint(0, args.classes, (args.batch_size,))

    # A two-image, two-class warm-up starts thread pools and kernels outside the timed steps.
    warm_up = build_steps(backbone, names[:2], pixels[:2], labels[:2] % 2, args.n_ctx)
    warm_up.reference()
    warm_up.ours()
    steps = build_steps(backbone, names, pixels, labels, args.n_ctx)
    times: dict[str, list[float]] = {"reference": [], "ours": []}
    for index in range(args.repeats):
        for name in times:
            print(f"  step {index + 1}/{args.repeats}: {name} ...", flush=True)
            times[name].append(seconds(getattr(steps, name)))
    ours_s, reference_s = statistics.median(times["ours"]), statistics.median(times["reference"])
    print(f"adapt bench prompts: {args.arch} (random weights), {args.classes} classes, batch {args.batch_size}, "
          f"{args.n_ctx} context tokens, fp32, {torch.get_num_threads()} CPU threads, median of {args.repeats}")
    print(f"  reference CoOp step ({backbone.text.context_length} text positions, image encoder every step): "
          f"{reference_s:8.3f} s")
    print(f"  mmadapt coop step ({steps.positions} text positions, cached image features): {ours_s:8.3f} s")
    print(f"  (image features of the batch: {steps.cache_s:.3f} s, computed once per run by the engine's cache)")
    return {"reference / ours": reference_s / ours_s}
