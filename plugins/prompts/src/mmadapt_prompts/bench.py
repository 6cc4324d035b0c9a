"""``adapt bench prompts``: one coop training step three ways, side by side, time and activation memory.

All three train the same context on the same batch of the same randomly initialised open_clip model
with SGD, in fp32. The reference step is CoOp's own (:mod:`.reference`): image encoder on the pixels
and a 77-position text pass every step. ``truncated`` is what ``adapt run`` does with ``augment:
none`` and the shared prefix switched off: image features cached once by the engine (their one-time
cost is printed separately), the text sequence cut after the longest prompt's end token. ``ours``
adds the shared prefix, ``adapt run``'s default: SOS and the context run once, only each class's
name, ending and end token per class.

Memory is the activation memory of a step: the bytes of every distinct tensor the forward pass saves
for backward (``torch.autograd.graph.saved_tensors_hooks``; parameters not counted), what a training
step holds between its forward and backward pass. It is counted in a forward pass that keeps none of
them, so a variant that would not fit in memory is still measured; such a variant is not timed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from mmadapt import measure_steps, print_step_table

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




#: The variants, in the order they are printed and timed, with their table labels.
LABELS = {
    "reference": "reference CoOp step (image encoder every step)",
    "truncated": "truncated (cached image features, cut text)",
    "ours": "truncated + shared prefix (mmadapt coop)",
}


@dataclass
class Steps:
    """One training step of each variant on the same batch, all starting from the same context."""

    #: Per variant, a full SGD step and the loss of its forward pass alone.
    steps: dict[str, Callable[[], None]]
    losses: dict[str, Callable[[], object]]
    #: Text positions each variant runs: ``"77 x 100"``, ``"22 x 100"``, ``"17 + 365"`` (shared once + per class).
    positions: dict[str, str]
    #: Seconds to compute the batch's image features once (the engine's cache).
    cache_s: float


def build_steps(backbone, names: list[str], pixels, labels, n_ctx: int) -> Steps:
    """SGD steps (Dassl's settings) of the reference CoOp and of our coop, truncated and with the shared prefix."""
    import torch
    import torch.nn.functional as F
    from mmadapt import Task

    from .config import CoopConfig
    from .coop import Coop
    from .reference import ReferenceCoop

    ours = Coop(CoopConfig(n_ctx=n_ctx), backbone, Task(names)).train()
    truncated = Coop(CoopConfig(n_ctx=n_ctx), backbone, Task(names)).train()
    truncated.prompt.share_prefix = False
    with torch.no_grad():
        truncated.prompt.ctx.copy_(ours.prompt.ctx)
    reference = ReferenceCoop(backbone, names, ours.prompt.ctx).train()
    started = time.perf_counter()
    with torch.no_grad():
        batch = {"image_features": backbone.encode_image(pixels).float(), "label": labels}
    cache_s = time.perf_counter() - started

    losses = {
        "reference": lambda: F.cross_entropy(reference(pixels), labels),
        "truncated": lambda: F.cross_entropy(truncated(batch)["logits"], labels),
        "ours": lambda: F.cross_entropy(ours(batch)["logits"], labels),
    }
    params = {"reference": reference.ctx, "truncated": truncated.prompt.ctx, "ours": ours.prompt.ctx}

    def sgd_step(param, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.SGD([param], lr=0.002, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            loss_of().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    classes, length, shared = len(names), ours.prompt.length, ours.prompt.shared_length
    own = int((ours.prompt.eot + 1 - shared).sum())  # each prompt cut after its own end token
    return Steps(
        steps={name: sgd_step(params[name], losses[name]) for name in LABELS},
        losses=losses,
        positions={
            "reference": f"{backbone.text.context_length} x {classes}",
            "truncated": f"{length} x {classes}",
            "ours": f"{shared} + {own}",
        },
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
                        help="timed steps of each variant, interleaved; the median is reported (default 1)")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Build the model, count each variant's activation memory, time ``args.repeats`` steps of each that fits
    after a small warm-up, print the table and return the ratios (``adapt bench`` prints them)."""
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
    for step in warm_up.steps.values():
        step()
    steps = build_steps(backbone, names, pixels, labels, args.n_ctx)
    measures = measure_steps(steps.steps, steps.losses, backbone.parameters(), args.repeats)

    print(f"adapt bench prompts: {args.arch} (random weights), {args.classes} classes, batch {args.batch_size}, "
          f"{args.n_ctx} context tokens, fp32, {torch.get_num_threads()} CPU threads, median of {args.repeats}")
    print_step_table(measures, LABELS, steps.positions)
    print(f"  (image features of the batch: {steps.cache_s:.3f} s, computed once per run by the engine's cache)")
    print("  (time: wall clock; CPU time: this process, all threads; activation memory: bytes saved for backward")
    print("   by one step's forward pass, weights not counted)")
    return measures.ratios((("reference", "ours"), ("truncated", "ours")))
