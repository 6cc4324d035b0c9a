"""``adapt bench lane``: one summarised MULTI-LANE lane against one full-token lane on a ViT (random weights).

Both lanes are this plugin's ``multi-lane`` adapter on the same timm ViT (default ViT-B/16 at 224,
no download): ``summary: selectors`` (S selectors, P prompts in the first L_p blocks) and ``summary:
full`` (the lane runs on every image token with the same prompts). Measured on the same images, in
one process, without gradients: MACs with ``torch.utils.flop_counter`` (FLOPs / 2) and wall time of
each lane's blocks, final norm included, head, patch embedding and frozen stream excluded (the
counting convention of multi-lane.md, whose analytic figures are printed alongside). Then the cost
of inference with T lanes: the frozen stream plus T lanes, from the measured parts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench lane``."""
    parser.add_argument("--arch", default="vit_base_patch16_224", help="timm ViT, random weights (default ViT-B/16)")
    parser.add_argument("--selectors", type=int, default=20, help="S, selectors per lane (default 20)")
    parser.add_argument("--prompt-length", type=int, default=20, help="P, prompt tokens per layer (default 20)")
    parser.add_argument("--prompt-layers", type=int, default=5, help="L_p, prompted layers (default 5)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default 1)")
    parser.add_argument("--tasks", default="1,2,4,8,10", help="task counts of the cost table (default 1,2,4,8,10)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each lane; the median (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")


def analytic_macs(tokens: int, width: int, depth: int, selectors: int, prompts: int, prompt_layers: int) -> dict:
    """multi-lane.md's counting: per block of n query tokens, qkv n·d·3d, attention 2·n·(n+p)·d, projection
    n·d², MLP 8·n·d²; summarisation 2·S·N·d per block. ``{"frozen", "lane", "full"}`` in MACs."""

    def block(n: int, keys: int) -> int:
        return 12 * n * width * width + 2 * n * keys * width

    frozen = depth * block(tokens, tokens)
    lane = sum(
        block(1 + selectors, 1 + selectors + (prompts if i < prompt_layers else 0)) + 2 * selectors * tokens * width
        for i in range(depth)
    )
    full = sum(block(tokens, tokens + (prompts if i < prompt_layers else 0)) for i in range(depth))
    return {"frozen": frozen, "lane": lane, "full": full}


def counted_macs(fn: Callable[[], object]) -> int:
    """Multiply-accumulates of one call of ``fn``: ``torch.utils.flop_counter`` FLOPs / 2.

    Attention runs on PyTorch's math backend while counting: the fused CPU kernel has no FLOP
    formula, the math one is matrix products the counter sees.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def random_vit(arch: str):
    """A timm ViT ``arch`` with random weights (no download) behind the Backbone contract."""
    import timm
    import torch
    from mmadapt import TimmBackbone

    torch.manual_seed(0)
    print(f"building {arch} with random weights ...", flush=True)
    return TimmBackbone(timm.create_model(arch, pretrained=False, num_classes=0), name=f"timm {arch}")


def build_lanes(args: argparse.Namespace, backbone=None):
    """The backbone (``args.arch`` unless given), the image tokens, and the frozen stream, the summarised
    lane and the full-token lane as callables."""
    import torch

    from .config import MultiLaneConfig
    from .multilane import MultiLane
    from .tasks import IncrementalTask

    backbone = backbone or random_vit(args.arch)
    task = IncrementalTask([f"class{i}" for i in range(10)], kind="multi-label", task_sizes=[5, 5])
    options = {
        "num_selectors": args.selectors,
        "prompt_length": args.prompt_length,
        "prompt_layers": args.prompt_layers,
    }
    summarised = MultiLane(MultiLaneConfig(**options), backbone, task).eval()
    full = MultiLane(MultiLaneConfig(**options, summary="full"), backbone, task).eval()
    size = backbone.preprocessing.size
    pixels = torch.randn(args.batch_size, 3, size, size)
    blocks = backbone.image.blocks
    with torch.no_grad():
        tokens = backbone.image.embed(pixels)
        contexts, x = [], tokens
        for block in blocks:
            contexts.append(block.norm1(x))
            x = block(x)

    def frozen_stream():
        x = tokens
        for block in blocks:
            x = block(x)
        return x

    def summarised_lane():
        stream = summarised._lane_input([0], len(pixels), tokens.dtype)
        for index, block in enumerate(blocks):
            stream = summarised._block(block, index, stream, contexts[index], [0], len(pixels))
        return backbone.image.final_norm(stream[:, :1])

    def full_lane():
        stream = tokens
        for index, block in enumerate(blocks):
            stream = full._block(block, index, stream, None, [0], len(pixels))
        return backbone.image.final_norm(stream[:, :1])

    return backbone, tokens, frozen_stream, summarised_lane, full_lane


def main(args: argparse.Namespace) -> dict[str, float]:
    """Measure both lanes and the frozen stream, print the tables, return the full / summarised ratios."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = [int(t) for t in str(args.tasks).split(",") if t.strip()]
    backbone, tokens, frozen_stream, summarised_lane, full_lane = build_lanes(args)
    depth, width = len(backbone.image.blocks), backbone.image.width
    analytic = analytic_macs(tokens.shape[1], width, depth, args.selectors, args.prompt_length, args.prompt_layers)
    per_image = args.batch_size
    measured, seconds = {}, {}
    with torch.no_grad():
        for name, fn in (("frozen", frozen_stream), ("lane", summarised_lane), ("full", full_lane)):
            measured[name] = counted_macs(fn) / per_image
            seconds[name] = median_seconds(fn, args.repeats)
    print(
        f"\n{args.arch}, {tokens.shape[1]} tokens of width {width}, {depth} blocks; S={args.selectors}, "
        f"P={args.prompt_length}, L_p={args.prompt_layers}; batch {args.batch_size}, {torch.get_num_threads()} "
        "thread(s); GMACs per image"
    )
    print(f"{'':26}{'measured':>10}{'analytic':>10}{'time (ms)':>11}")
    for name, label in (("frozen", "frozen stream"), ("lane", "summarised lane"), ("full", "full-token lane")):
        print(f"{label:26}{measured[name] / 1e9:10.3f}{analytic[name] / 1e9:10.3f}{seconds[name] * 1e3:11.1f}")
    print(f"\n{'tasks':>5}{'summarised GMACs':>18}{'full-token GMACs':>18}{'summarised ms':>15}{'full-token ms':>15}")
    for count in tasks:
        print(
            f"{count:5d}{(measured['frozen'] + count * measured['lane']) / 1e9:18.2f}"
            f"{(measured['frozen'] + count * measured['full']) / 1e9:18.2f}"
            f"{(seconds['frozen'] + count * seconds['lane']) * 1e3:15.1f}"
            f"{(seconds['frozen'] + count * seconds['full']) * 1e3:15.1f}"
        )
    print("(the frozen stream plus T lanes, from the measured parts)")
    return {
        "full / summarised MACs": measured["full"] / measured["lane"],
        "full / summarised MACs, analytic": analytic["full"] / analytic["lane"],
        "full / summarised time": seconds["full"] / seconds["lane"],
    }
