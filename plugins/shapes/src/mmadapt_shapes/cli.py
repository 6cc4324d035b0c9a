"""``adapt shapes pretrain|evaluate|samples``: pretrain shapes-clip, evaluate it zero-shot, save sample grids.

Cheap to import (``adapt`` imports it to build its parser): each action imports its module when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``adapt shapes`` and their options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pretrain = actions.add_parser("pretrain", help="pretrain shapes-clip on ShapesWorld captions")
    pretrain.add_argument("--out", required=True, help="run directory (checkpoint, log, weights)")
    pretrain.add_argument("--steps", type=int, default=3600)
    pretrain.add_argument("--batch-size", type=int, default=128)
    pretrain.add_argument("--lr", type=float, default=1e-3)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--warmup", type=int, default=150)
    pretrain.add_argument("--weight-decay", type=float, default=0.1)
    pretrain.add_argument("--shape-loss", type=float, default=1.0, help="weight of the auxiliary shape term (0: off)")
    pretrain.add_argument("--checkpoint-every", type=int, default=100)
    pretrain.add_argument("--log-every", type=int, default=10)
    pretrain.add_argument("--device", default="auto")
    pretrain.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    pretrain.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    pretrain.add_argument("--export", default=None, help="also write the final weights to this path")
    pretrain.add_argument("--no-progress", action="store_true")
    evaluate = actions.add_parser("evaluate", help="zero-shot accuracy and retrieval of shapes-clip")
    evaluate.add_argument("--weights", default="default",
                          help="'default', a .safetensors file, or a pretraining checkpoint .pt")
    evaluate.add_argument("--n", type=int, default=500, help="images per classification task")
    evaluate.add_argument("--n-retrieval", type=int, default=1000)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--threads", type=int, default=1)
    evaluate.add_argument("--json", default=None, help="also write the results to this JSON file")
    samples = actions.add_parser("samples", help="save sample grids of every ShapesWorld task")
    samples.add_argument("out_dir", nargs="?", default="docs/images")


def main(args: argparse.Namespace) -> int:
    """Run the chosen action."""
    if args.action == "pretrain":
        from .pretrain import pretrain

        print(pretrain(args.out, args.steps, args.batch_size, args.lr, args.seed, resume=not args.no_resume,
                       device=args.device, threads=args.threads, warmup=args.warmup, weight_decay=args.weight_decay,
                       shape_loss=args.shape_loss, checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                       export_to=args.export, progress=not args.no_progress))
    elif args.action == "evaluate":
        from .evaluate import evaluate

        results = evaluate(args.weights, args.n, args.n_retrieval, args.seed, args.threads)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    else:
        from .samples import save_sample_grids

        for path in save_sample_grids(args.out_dir):
            print(path)
    return 0
