"""``adapt bench deep``: one MaPLe training step three ways, side by side, time and activation memory.

All three train on the same batch of the same randomly initialised open_clip model with SGD, in fp32.

- ``reference``: the computation of MaPLe's own code: every class's prompt at all ``context_length`` (77)
  positions through the text tower, the deep text tokens replacing the context at each prompted layer.
- ``ours``: what ``adapt run`` does with the ``maple`` adapter: the start token and the context (the
  positions every prompt shares, at every layer) run once for all classes, each class's own positions
  only up to its end token (``PromptLearner.encode_context(deep=...)``).
- ``coop``: a CoOp step for scale (4 context tokens from "a photo of a", shared prefix, image features
  computed without gradient each step, as with augmentation): the text prompt only, no image tokens.

Memory is a step's activation memory: the bytes of every distinct tensor the forward pass saves for backward
(parameters not counted), what a step holds between its forward and backward pass. It is counted in a forward
pass that keeps none of them, so a variant too large for this machine is still measured; it is then not timed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from mmadapt import measure_steps, print_step_table

#: The variants, in the order they are printed and timed.
VARIANTS = ("reference", "ours", "coop")

LABELS = {
    "reference": "reference MaPLe (every class at 77 positions)",
    "ours": "mmadapt maple (cut prompts + shared prefix)",
    "coop": "CoOp step (text prompt only)",
}


def classnames(count: int) -> list[str]:
    """``count`` class names of one to three tokens: "class 1", "class 2 object", ... (no two alike)."""
    suffixes = ("", " object", " thing of a kind")
    return [f"class {i + 1}{suffixes[i % len(suffixes)]}" for i in range(count)]


@dataclass
class Steps:
    """One SGD step of each variant on the same batch, starting from the same prompts."""

    #: Per variant, a whole step (forward, backward, update) and the loss of its forward pass alone.
    steps: dict[str, Callable[[], None]]
    losses: dict[str, Callable[[], object]]
    #: Text positions each variant runs through the text tower, e.g. ``"77 x 1000"`` or ``"3 + 6700"``.
    positions: dict[str, str]


def build_steps(backbone, names: list[str], pixels, labels, n_ctx: int, depth: int) -> Steps:
    """SGD steps (MaPLe's settings) of the reference computation, our maple adapter and a CoOp step."""
    import torch
    import torch.nn.functional as F
    from mmadapt import PromptLearner, Task, new_context

    from .config import MapleConfig
    from .maple import Maple

    ours = Maple(MapleConfig(n_ctx=n_ctx, depth=depth), backbone, Task(names)).train()
    reference = Maple(MapleConfig(n_ctx=n_ctx, depth=depth), backbone, Task(names)).train()
    reference.load_trainable_state_dict(ours.trainable_state_dict())
    reference.prompt.truncate, reference.prompt.share_prefix = False, False
    reference.prompt.set_classnames(backbone, reference.prompt_classnames(names))
    coop = PromptLearner(backbone, names, new_context(backbone, None, "a photo of a")).train()
    batch = {"image": pixels, "label": labels}

    def coop_loss() -> torch.Tensor:
        with torch.no_grad():
            image = backbone.encode_image(pixels, normalize=True)
        text = coop.encode_context(backbone, coop.ctx)
        return F.cross_entropy(backbone.logit_scale * image @ text.t(), labels)

    losses = {
        "reference": lambda: F.cross_entropy(reference(batch)["logits"], labels),
        "ours": lambda: F.cross_entropy(ours(batch)["logits"], labels),
        "coop": coop_loss,
    }
    params = {
        "reference": [p for group in reference.parameter_groups().values() for p in group],
        "ours": [p for group in ours.parameter_groups().values() for p in group],
        "coop": [coop.ctx],
    }

    def sgd_step(parameters, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
        optimizer = torch.optim.SGD(parameters, lr=0.0035, momentum=0.9, weight_decay=5e-4)

        def step() -> None:
            loss_of().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    def shared_positions(learner) -> str:
        own = int((learner.eot + 1 - learner.shared_length).sum())  # each prompt cut after its own end token
        return f"{learner.shared_length} + {own}"

    return Steps(
        steps={name: sgd_step(params[name], losses[name]) for name in VARIANTS},
        losses=losses,
        positions={"reference": f"{reference.prompt.length} x {len(names)}", "ours": shared_positions(ours.prompt),
                   "coop": shared_positions(coop)},
    )










def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench deep``."""
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random weights (default ViT-B-16)")
    parser.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000, ImageNet's)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step (default 4, MaPLe's)")
    parser.add_argument("--n-ctx", type=int, default=2, help="MaPLe's text tokens per layer (default 2)")
    parser.add_argument("--depth", type=int, default=9, help="MaPLe's prompted layers J (default 9)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed steps of each variant, interleaved; the median is reported (default 1)")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Build the model, count each variant's activation memory, time the steps that fit after a small warm-up,
    print the table and return the ratios (``adapt bench`` prints them)."""
    import torch
    from mmadapt import UserError, random_openclip_backbone

    if min(args.classes, args.batch_size, args.repeats, args.n_ctx, args.depth, args.threads or 1) < 1:
        raise UserError("--classes, --batch-size, --repeats, --n-ctx, --depth and --threads must be at least 1")
    backbone = random_openclip_backbone(args.arch, args.threads)
    names = classnames(args.classes)
    size = backbone.preprocessing.size
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(args.batch_size, 3, size, size, generator=generator)
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=generator)

    # A two-class warm-up starts thread pools and kernels outside the timed steps.
    warm_up = build_steps(backbone, names[:2], pixels[:2], labels[:2] % 2, args.n_ctx, args.depth)
    for step in warm_up.steps.values():
        step()
    steps = build_steps(backbone, names, pixels, labels, args.n_ctx, args.depth)
    measures = measure_steps(steps.steps, steps.losses, backbone.parameters(), args.repeats)

    print(f"adapt bench deep: {args.arch} (random weights), {args.classes} classes, batch {args.batch_size}, "
          f"MaPLe n = {args.n_ctx}, J = {args.depth}, fp32, {torch.get_num_threads()} CPU threads, "
          f"median of {args.repeats}")
    print_step_table(measures, LABELS, steps.positions)
    print("  (time: wall clock; CPU time: this process, all threads; activation memory: bytes saved for backward")
    print("   by one step's forward pass, weights not counted; every variant encodes the batch's images each step)")
    return measures.ratios((("reference", "ours"), ("ours", "coop")))
