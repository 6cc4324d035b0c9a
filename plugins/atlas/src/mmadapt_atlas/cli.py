"""``adapt atlas vectors RUN_DIR... --out DIR`` and ``adapt atlas merge RUN_DIR --out FILE``.

Options and handlers only; torch is imported inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmadapt import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``adapt atlas`` and their options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    vectors = actions.add_parser("vectors", help="task vectors (fine-tuned - pre-trained image tower) of finished runs")
    vectors.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished finetune or lora (vision) runs")
    vectors.add_argument("--out", required=True, help="folder for the vectors, one RUN_DIR-name.safetensors each")
    vectors.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16",
                         help="precision of the stored vectors (default fp16, as the paper's)")
    merge = actions.add_parser("merge", help="plain weights (base + composed vectors) of a finished atlas run")
    merge.add_argument("run", metavar="RUN_DIR", help="a finished atlas run")
    merge.add_argument("--out", required=True, help="the safetensors file to write")


def main(args: argparse.Namespace) -> int:
    """Run the chosen action; print what was written."""
    if args.action == "merge":
        from .merge import merge_run

        kind = merge_run(args.run, args.out)
        print(f"wrote {args.out} ({kind})")
        return 0
    from .vectors import DTYPES, save_vector, vector_of_run

    names = [Path(run).resolve().name for run in args.runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"run directories {repeated} share a folder name, which names their vector file; "
                        "pass runs whose folders are named apart")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for run, name in zip(args.runs, names):
        vector = vector_of_run(run, DTYPES[args.dtype])
        path = out / f"{name}.safetensors"
        save_vector(path, vector)
        print(f"wrote {path} (task {vector.task!r}, {len(vector.tensors)} blocks, {args.dtype})")
    return 0
