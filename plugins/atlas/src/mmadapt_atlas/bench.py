"""``adapt bench atlas``: time and memory of one aTLAS training step with N task vectors, fp16 vs fp32 vectors.

Both adapters compose the same N random vectors (written once in each precision) over one randomly
initialised open_clip model, and train their coefficients with AdamW on the same batch, timed side by
side in one process. Memory is what the vectors hold (exact, any device) and, on a GPU, the peak a
step allocates beyond what is resident (both adapters' vectors stay resident throughout).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench atlas``."""
    parser.add_argument("--arch", default="ViT-B-32", help="open_clip architecture, random weights (default ViT-B-32)")
    parser.add_argument("--vectors", type=int, default=4, help="N, task vectors composed (default 4)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step (default 16)")
    parser.add_argument("--classes", type=int, default=10, help="classes of the zero-shot head (default 10)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu; cuda on a GPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps of each kind; the median is reported")


def main(args: argparse.Namespace) -> dict[str, float]:
    """Write the vectors, build both adapters, time ``args.repeats`` steps each after a warm-up; return the ratios."""
    import torch
    from mmadapt import Task, UserError, random_openclip_backbone

    from .adapter import Atlas
    from .config import AtlasConfig
    from .vectors import TaskVector, base_identity, save_vector

    if min(args.vectors, args.batch_size, args.classes, args.repeats, args.threads or 1) < 1:
        raise UserError("--vectors, --batch-size, --classes, --repeats and --threads must be at least 1")
    device = torch.device(args.device)
    backbone = random_openclip_backbone(args.arch, args.threads)
    task = Task([f"class {i}" for i in range(args.classes)], templates=["a photo of a {}."])
    identity = base_identity(backbone)
    blocks = backbone.image.parameter_blocks()
    size = backbone.preprocessing.size
    generator = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(args.batch_size, 3, size, size, generator=generator).to(device)}
    labels = torch.randint(0, args.classes, (args.batch_size,), generator=generator).to(device)
    backbone.to(device)
    with tempfile.TemporaryDirectory() as folder:
        paths: dict[str, list[str]] = {"fp16": [], "fp32": []}
        for index in range(args.vectors):
            tensors = {name: 1e-3 * torch.randn(p.shape, generator=generator) for name, p in blocks.items()}
            for precision, dtype in (("fp16", torch.float16), ("fp32", torch.float32)):
                path = Path(folder) / f"{precision}-{index}.safetensors"
                save_vector(path, TaskVector({n: t.to(dtype) for n, t in tensors.items()},
                                             {**identity, "task": f"random {index}"}))
                paths[precision].append(str(path))
        adapters = {precision: Atlas(AtlasConfig(vectors=files), backbone, task).to(device).train()
                    for precision, files in paths.items()}
    results = {precision: _measure(adapter, batch, labels, args.repeats, device)
               for precision, adapter in adapters.items()}
    count = adapters["fp32"].parameter_counts()["trainable"]
    print(f"adapt bench atlas: {args.arch} (random weights), {args.vectors} vectors x {len(blocks)} blocks = {count:,} "
          f"coefficients, batch {args.batch_size}, {device}, {torch.get_num_threads()} CPU threads, "
          f"median of {args.repeats}")
    for precision, (seconds, vector_bytes, peak) in results.items():
        peak_text = f", step allocates {peak / 2**20:8.1f} MiB at its peak" if peak else ""
        print(f"  vectors {precision}: {seconds:8.3f} s per step, vectors {vector_bytes / 2**20:8.1f} MiB{peak_text}")
    ratios = {"fp32 / fp16 time": results["fp32"][0] / results["fp16"][0],
              "fp32 / fp16 vector memory": results["fp32"][1] / results["fp16"][1]}
    if results["fp16"][2]:
        ratios["fp32 / fp16 step peak memory"] = results["fp32"][2] / results["fp16"][2]
    return ratios


def _measure(adapter, batch, labels, repeats: int, device) -> tuple[float, int, int]:
    """Median seconds of an AdamW step, bytes of the vectors, and on a GPU the peak bytes a step allocates beyond
    what was resident before it (0 on the CPU)."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.AdamW(adapter.parameter_groups()["coefficients"], lr=0.1, weight_decay=0.1)

    def step() -> None:
        F.cross_entropy(adapter(batch)["logits"], labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    cuda = device.type == "cuda"
    step()  # warm-up: kernels and thread pools start outside the timed steps
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    resident = torch.cuda.memory_allocated() if cuda else 0
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    vector_bytes = sum(b.numel() * b.element_size() for name, b in adapter.bank.named_buffers() if "block" in name)
    return statistics.median(times), vector_bytes, torch.cuda.max_memory_allocated() - resident if cuda else 0
