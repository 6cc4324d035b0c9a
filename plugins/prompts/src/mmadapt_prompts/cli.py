"""``adapt coop-split DATASET DATASET_DIR``: write a CoOp split file (see :mod:`mmadapt_prompts.coop_splits`).

Cheap to import (``adapt`` imports it to build its parser).
"""

from __future__ import annotations

import argparse
import json

from .coop_splits import DATASETS, write_split


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt coop-split``."""
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which CoOp dataset")
    parser.add_argument("dataset_dir", help="the dataset folder, e.g. $DATA/imagenet or $DATA/fgvc_aircraft")


def main(args: argparse.Namespace) -> int:
    """Write the split file and say where the recipe expects it."""
    path = write_split(args.dataset, args.dataset_dir)
    counts = {name: len(items) for name, items in json.loads(path.read_text()).items()}
    print(f"wrote {path} ({', '.join(f'{k}: {v}' for k, v in counts.items())} images)")
    print(f"recipes read it with data.root={path.parent / DATASETS[args.dataset][0]}")
    return 0
