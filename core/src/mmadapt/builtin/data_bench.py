"""``adapt bench data``: images per second of mmadapt's data path against torchvision's ``ImageFolder`` loop.

Both read the same JPEG files of an image folder in the same order with the same training transform
(CLIP's 224 crop with ``crop-flip`` augmentation) and the same random crops (torch's generator is
seeded alike for each; the order is the folder's, as shuffling costs nothing measurable and would
draw from that generator differently). Ours is the ``imagefolder`` dataset's split, viewed with the
transform, through the engine's batch loader (its sampler and :func:`~mmadapt.collate`, collated in
the workers and finished in the main process when there are workers); the baseline is
``torchvision.datasets.ImageFolder`` and a plain ``DataLoader``. Without workers the two loops take
batches in turn; with workers whole passes alternate. Each of ``--repeats`` rounds gives a ratio; the
median round ratio is reported, so noise from other processes on the machine affects both sides alike.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: CLIP's preprocessing: what ViT-B/16 recipes feed the image tower.
CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adapt bench data``."""
    parser.add_argument("--folder", default=None,
                        help="an image folder (root/train/<class>/<image>) to read; default: JPEGs written "
                             "to a temporary folder")
    parser.add_argument("--images", type=int, default=384, help="JPEGs to write without --folder (default 384)")
    parser.add_argument("--side", type=int, default=400, help="long side of the written JPEGs (default 400, 4:3)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to time (default 0 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per worker count (default 5)")


def write_image_folder(root: Path, images: int, side: int, classes: int = 4) -> Path:
    """``images`` JPEGs (``side`` x 3/4 ``side``, smooth colours and noise) in ``root/train/<class>/``."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    height = side * 3 // 4
    ramp = np.linspace(0, 1, side)[None, :, None] * np.linspace(0, 1, height)[:, None, None]
    for i in range(images):
        folder = root / "train" / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = 255 * ramp * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 12, (height, side, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
    return root


def count_images(batch: Any) -> int:
    """Images in a batch of either loop (our dict, or torchvision's ``[images, labels]``)."""
    return len(batch["image"] if isinstance(batch, dict) else batch[0])


def images_per_second(batches: Iterable, count: int) -> float:
    """Images per second of one pass over ``batches`` (which must yield ``count`` images in all)."""
    start = time.perf_counter()
    seen = sum(count_images(batch) for batch in batches)
    elapsed = time.perf_counter() - start
    if seen != count:
        raise RuntimeError(f"a pass yielded {seen} images, expected {count}")
    return count / elapsed


def lockstep_images_per_second(loaders: dict[str, Iterable]) -> dict[str, float]:
    """Images/s of each in-process loader (no workers), taking one batch of each in turn.

    Each loader keeps its own torch random state (the same seed), so both draw the same crops; a
    change of machine load hits both within a batch's time.
    """
    import torch

    iterators = {name: iter(loader) for name, loader in loaders.items()}
    states = dict.fromkeys(loaders, torch.manual_seed(0).get_state())
    elapsed, seen = dict.fromkeys(loaders, 0.0), dict.fromkeys(loaders, 0)
    for turn in itertools.count():
        for name in sorted(iterators, reverse=turn % 2 == 1):
            torch.set_rng_state(states[name])
            start = time.perf_counter()
            batch = next(iterators[name], None)
            elapsed[name] += time.perf_counter() - start
            states[name] = torch.get_rng_state()
            if batch is None:
                return {name: seen[name] / elapsed[name] for name in loaders}
            seen[name] += count_images(batch)
    raise AssertionError("unreachable")


def our_batches(root: Path, transform, batch_size: int, workers: int):
    """The ``imagefolder`` dataset's training split through the engine's sampler and collate."""
    from ..passes import batch_loader
    from .config import ImageFolderConfig
    from .image_datasets import build_imagefolder

    split = build_imagefolder(ImageFolderConfig(root=str(root))).split("train").with_transform(transform)
    return batch_loader(split, batch_size, shuffle=False, workers=workers), len(split)


def torchvision_batches(root: Path, transform, batch_size: int, workers: int):
    """torchvision's ``ImageFolder`` and a ``DataLoader``: the loop most training scripts use."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(root / "train"), transform=transform)
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers), len(dataset)


def compare(root: Path, batch_size: int, workers: int, repeats: int) -> dict[str, float]:
    """Median images/s of ours and torchvision's loop over ``root`` with ``workers`` workers over ``repeats``
    rounds, and the median of the rounds' ratios ours / torchvision (``"ratio"``).

    Without workers the loops take batches in turn (:func:`lockstep_images_per_second`); with workers,
    whose prefetching would run ahead while the other loop is timed, whole passes alternate, the
    order swapped each round. An untimed pass of each comes first (page cache, allocators).
    """
    import torch

    from ..backbone import Preprocessing
    from ..data import build_transforms

    train, _ = build_transforms(Preprocessing(CLIP_SIZE, CLIP_MEAN, CLIP_STD), "crop-flip")
    loops = {"ours": our_batches, "torchvision": torchvision_batches}
    rounds = []
    for round_ in range(repeats + 1):
        built = {name: build(root, train, batch_size, workers) for name, build in loops.items()}
        if workers == 0:
            speeds = lockstep_images_per_second({name: batches for name, (batches, _) in built.items()})
        else:
            speeds = {}
            for name in sorted(built, reverse=round_ % 2 == 1):
                batches, count = built[name]
                torch.manual_seed(0)
                speeds[name] = images_per_second(batches, count)
        if round_:
            rounds.append(speeds)
    medians = {name: statistics.median(speeds[name] for speeds in rounds) for name in loops}
    ratio = statistics.median(speeds["ours"] / speeds["torchvision"] for speeds in rounds)
    return {**medians, "ratio": ratio}


def main(args: argparse.Namespace) -> dict[str, float]:
    """Print images/s of both loops per worker count; return ours / torchvision per worker count."""
    import torch

    from ..errors import UserError

    if min(args.batch_size, args.repeats, args.images, args.side) < 1 or min(args.workers) < 0:
        raise UserError("adapt bench data: --batch-size, --repeats, --images and --side must be positive, "
                        "--workers at least 0")
    print(f"torch threads {torch.get_num_threads()}; batch {args.batch_size}; CLIP train transform "
          f"({CLIP_SIZE} crop-flip)")
    ratios = {}
    with tempfile.TemporaryDirectory() as temporary:
        if args.folder:
            root = Path(args.folder)
            if not (root / "train").is_dir():
                raise UserError(f"--folder {root}: no train/ folder; give root/train/<class>/<image>")
        else:
            root = write_image_folder(Path(temporary), args.images, args.side)
            print(f"{args.images} JPEGs of {args.side}x{args.side * 3 // 4} in {root}")
        for workers in args.workers:
            measured = compare(root, args.batch_size, workers, args.repeats)
            ours, theirs = measured["ours"], measured["torchvision"]
            print(f"{workers} workers: ours {ours:.1f} images/s, torchvision {theirs:.1f} images/s")
            ratios[f"ours / torchvision images/s, {workers} workers (median of rounds)"] = measured["ratio"]
    return ratios
