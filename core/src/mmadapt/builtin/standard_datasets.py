"""Standard classification benchmarks in their distributed layouts: CIFAR-100 (torchvision's python
pickles) and ImageNet-R (class folders without a train/test split).

A missing or malformed file stops with a ``UserError`` that names the file and the expected layout.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data import DataBundle, DatasetRoot, FileSplit, Split, Task, check_label, list_images, prompt_name
from ..errors import UserError
from .config import Cifar100Config, ImageNetRConfig

CIFAR_FOLDER = "cifar-100-python"
CIFAR_LAYOUT = (
    "the cifar100 dataset reads torchvision's layout root/cifar-100-python/{meta,train,test} (the python "
    "version, cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, or "
    "torchvision.datasets.CIFAR100(root, download=True))"
)
IMAGENET_R_LAYOUT = (
    "the imagenet-r dataset reads root/<wnid>/<image> (the 200 class folders of imagenet-r.tar, "
    "https://github.com/hendrycks/imagenet-r) or root/train/<wnid>/ and root/test/<wnid>/"
)
WNID_LINE = re.compile(r"(n\d{8})\s+(\S.*)")


# -- CIFAR-100 --------------------------------------------------------------------------------------


class ArraySplit(Split):
    """Images held in memory as one uint8 array of shape (N, H, W, 3), one label each."""

    def __init__(self, pixels: np.ndarray, labels: list[int], n_classes: int, name: str, **kwargs: Any) -> None:
        if len(pixels) != len(labels):
            raise ValueError(f"ArraySplit needs one label per image; got {len(pixels)} images, {len(labels)} labels")
        super().__init__(labels, n_classes, **kwargs)
        self.pixels = pixels
        self.name = name

    def _load(self, i: int) -> dict[str, Any]:
        return {"image": Image.fromarray(self.pixels[i])}

    def _own_key(self, index: int) -> str:
        return f"{self.name}[{index}]"


def build_cifar100(config: Cifar100Config) -> DataBundle:
    """The 100 fine classes in the files' label order (alphabetical); the ``train`` and ``test`` splits."""
    root = DatasetRoot(config.root)
    folder = root.path / CIFAR_FOLDER if (root.path / CIFAR_FOLDER).is_dir() else root.path
    missing = [name for name in ("meta", "train", "test") if not (folder / name).is_file()]
    if missing:
        raise UserError(f"data.root: {folder} has no {', '.join(missing)} file(s); {CIFAR_LAYOUT}")
    names = _unpickled(folder / "meta", "fine_label_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UserError(f"{folder / 'meta'}: fine_label_names is not a list of class names; {CIFAR_LAYOUT}")
    splits = {name: _cifar_split(folder / name, len(names), config) for name in ("train", "test")}
    task = Task(classnames=[prompt_name(n) for n in names], templates=list(config.templates), name="cifar100")
    return DataBundle(task, splits)


def _cifar_split(path: Path, n_classes: int, config: Cifar100Config) -> ArraySplit:
    data = _unpickled(path, "data")
    labels = _unpickled(path, "fine_labels")
    pixels = np.asarray(data, dtype=np.uint8)
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32 or len(labels) != len(pixels):
        raise UserError(
            f"{path}: expected 'data' of shape (N, 3072) and N 'fine_labels'; got {pixels.shape} and "
            f"{len(labels)} labels; {CIFAR_LAYOUT}"
        )
    checked = [check_label(int(label), n_classes, f"{path}: fine_labels[{i}]") for i, label in enumerate(labels)]
    images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channel planes -> H x W x RGB
    return ArraySplit(np.ascontiguousarray(images), checked, n_classes, f"{CIFAR_FOLDER}/{path.name}",
                      on_bad_image=config.on_bad_image)


def _unpickled(path: Path, key: str) -> Any:
    """Entry ``key`` of a CIFAR pickle (a dict written by Python 2, read with latin-1 strings)."""
    try:
        with open(path, "rb") as handle:
            content = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not a CIFAR python pickle ({error}); {CIFAR_LAYOUT}") from None
    if not isinstance(content, dict) or key not in content:
        raise UserError(f"{path}: has no {key!r} entry; {CIFAR_LAYOUT}")
    return content[key]


# -- ImageNet-R -------------------------------------------------------------------------------------


def build_imagenet_r(config: ImageNetRConfig) -> DataBundle:
    """Classes are the sorted WordNet-id folders, named from ``README.txt`` (``n01443537 goldfish``) when
    it lists them; an unsplit folder is cut by a seeded draw over every image (``test_fraction``)."""
    root = DatasetRoot(config.root)
    folder = root.path / "imagenet-r" if (root.path / "imagenet-r").is_dir() else root.path
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        classes = _class_folders(folder / "train")
        items = {name: _folder_items(root, folder / name, classes) for name in ("train", "test")}
    else:
        classes = _class_folders(folder)
        items = _seeded_split(_folder_items(root, folder, classes), config)
    splits = {
        name: FileSplit([path for path, _ in pairs], [label for _, label in pairs], len(classes),
                        on_bad_image=config.on_bad_image)
        for name, pairs in items.items()
    }
    names = _wordnet_names(folder / "README.txt", classes)
    task = Task(classnames=[prompt_name(names.get(c, c)) for c in classes], templates=list(config.templates),
                name="imagenet-r")
    return DataBundle(task, splits)


def _class_folders(folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [name for name in classes if name not in ("train", "test")]
    if not classes:
        raise UserError(f"data.root: {folder} has no class folders; {IMAGENET_R_LAYOUT}")
    return classes


def _folder_items(root: DatasetRoot, folder: Path, classes: list[str]) -> list[tuple[Path, int]]:
    items = []
    for label, name in enumerate(classes):
        images = list_images(folder / name)
        if not images:
            raise UserError(f"{folder / name}: no images (folder missing or empty); {IMAGENET_R_LAYOUT}")
        items += [(root.resolve(path.relative_to(root.path), where=str(path)), label) for path in images]
    return items


def _seeded_split(items: list[tuple[Path, int]], config: ImageNetRConfig) -> dict[str, list[tuple[Path, int]]]:
    order = list(range(len(items)))
    random.Random(config.split_seed).shuffle(order)
    cut = int((1.0 - config.test_fraction) * len(items))
    return {"train": [items[i] for i in sorted(order[:cut])], "test": [items[i] for i in sorted(order[cut:])]}


def _wordnet_names(readme: Path, classes: list[str]) -> dict[str, str]:
    """WordNet id -> class name from the lines ``<wnid> <name>`` of ``readme``; empty without the file."""
    if not readme.is_file():
        return {}
    names = {}
    for line in readme.read_text(encoding="utf-8", errors="replace").splitlines():
        match = WNID_LINE.fullmatch(line.strip())
        if match and match.group(1) in classes:
            names[match.group(1)] = match.group(2).strip()
    return names
