"""``adapt bench gpu``: training steps of every installed method on ViT-B/16 (random weights), in bf16 and
fp32, with and without ``torch.compile``; one JSON file of step time, images/s, peak memory, FLOPs,
achieved TFLOP/s and MFU.

The methods come from the plugins: a plugin whose benchmark is registered from ``<package>.<module>``
offers its steps in ``<package>.gpu_steps``, a module with
``training_steps(backbone, batch_size, tiny) -> dict[str, TrainingStep]`` (see :mod:`mmadapt.step_timing`).
On a CPU the same code paths run at tiny sizes (a two-block CLIP, small images, a few steps) with what
needs CUDA skipped (``torch.compile``, peak memory, MFU): this is what CI runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
from pathlib import Path
from typing import Any

from ..step_timing import PRECISIONS, measure_training_step

#: The file written into ``--out``.
RESULTS_FILE = "gpu-bench.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench gpu``."""
    parser.add_argument("--out", required=True, help=f"folder to write {RESULTS_FILE} into (created if missing)")
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture on CUDA (default ViT-B-16)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per step (default 64 on CUDA, 4 at tiny sizes)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per case (default 10 on CUDA, 2 tiny)")
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS),
                        help="precisions to time (default fp32 bf16)")
    parser.add_argument("--methods", nargs="+", default=None, help="method names to time (default: every one found)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile cases")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes even on CUDA (always on a CPU)")


def step_builders(manager: Any) -> dict[str, Any]:
    """``{module name: training_steps}`` of every plugin offering steps beside a registered benchmark."""
    found = {}
    for benchmark in manager.registry.all("benchmark"):
        if not isinstance(benchmark.factory, str):
            continue
        package = benchmark.factory.split(":")[0].rpartition(".")[0]
        name = f"{package}.gpu_steps"
        if package and name not in found and importlib.util.find_spec(name) is not None:
            found[name] = importlib.import_module(name).training_steps
    return found


def main(args: argparse.Namespace) -> dict[str, float]:
    """Time every method's step in every case, write ``--out``/gpu-bench.json, print a table; no ratio."""
    import torch

    from ..errors import UserError
    from ..plugins import get_plugin_manager

    cuda = torch.cuda.is_available()
    tiny = args.tiny or not cuda
    batch_size = args.batch_size or (4 if tiny else 64)
    steps = args.steps or (2 if tiny else 10)
    if min(batch_size, steps) < 1:
        raise UserError("adapt bench gpu: --batch-size and --steps must be at least 1")
    device = torch.device("cuda" if cuda else "cpu")
    backbone = _backbone(args.arch, tiny).to(device)
    steps_by_method = {}
    for build in step_builders(get_plugin_manager()).values():
        steps_by_method.update(build(backbone, batch_size, tiny))
    wanted = args.methods or sorted(steps_by_method)
    unknown = sorted(set(wanted) - set(steps_by_method))
    if unknown:
        raise UserError(f"adapt bench gpu --methods: {', '.join(unknown)} not offered by an installed plugin; "
                        f"choose from {', '.join(sorted(steps_by_method)) or '(none)'}")
    compile_modes = [False] if args.no_compile or not cuda else [False, True]
    results, skipped = [], []
    if not cuda:
        skipped.append("torch.compile, peak memory and MFU: no CUDA device")
    for method in wanted:
        for precision in args.precisions:
            for compiled in compile_modes:
                try:
                    measured = measure_training_step(steps_by_method[method], precision, compiled, steps)
                except Exception as error:  # one failing case (an unsupported kernel) must not lose the others
                    skipped.append(f"{method} {precision} compile={compiled}: {type(error).__name__}: {error}")
                    continue
                results.append({"method": method, **measured})
                _print_row(results[-1])
    record = {
        "device": torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()})",
        "torch": torch.__version__,
        "arch": "tiny openclip vit" if tiny else args.arch,
        "batch_size": batch_size,
        "steps": steps,
        "results": results,
        "skipped": skipped,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS_FILE).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out / RESULTS_FILE} ({record['device']}); skipped: {len(skipped)}")
    for reason in skipped:
        print(f"  skipped {reason}")
    return {}


def _backbone(arch: str, tiny: bool) -> Any:
    if tiny:
        from ..testing_models import tiny_openclip_backbone

        return tiny_openclip_backbone()
    from .benchmarking import random_openclip_backbone

    return random_openclip_backbone(arch)


def _print_row(row: dict[str, Any]) -> None:
    extras = [f"{row['achieved_tflops']:.2f} TFLOP/s"]
    if row["peak_memory_gib"] is not None:
        extras.append(f"peak {row['peak_memory_gib']:.2f} GiB")
    if row["mfu"] is not None:
        extras.append(f"MFU {100 * row['mfu']:.1f}%")
    print(f"{row['method']:<12} {row['precision']:<5} compile={row['compile']!s:<5} "
          f"{1000 * row['step_s']:8.1f} ms/step  {row['images_per_s']:8.1f} images/s  " + "  ".join(extras))
