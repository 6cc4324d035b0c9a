"""``adapt coop-split``: write CoOp split files for the two CoOp datasets that ship without one.

CoOp reads ImageNet from class folders plus ``classnames.txt`` and FGVCAircraft from its
``images_variant_*.txt`` lists; the other nine datasets come with ``split_zhou_<Name>.json``. This
command writes the same kind of file for these two, from the same sources and with CoOp's labels,
so every ``coop/*`` recipe of the plugin reads its data through the builtin ``coop-split`` dataset.
:mod:`mmadapt_prompts.cli` holds the command's options and handler.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmadapt import UserError

#: ``name -> (image folder inside the dataset folder, split file name)``.
DATASETS = {
    "imagenet": ("images", "split_zhou_ImageNet.json"),
    "fgvc-aircraft": ("images", "split_zhou_FGVCAircraft.json"),
}

#: ``[path relative to the image folder, label, class name]``, one entry of a CoOp split file.
Triple = list[str | int]


def imagenet_split(dataset_dir: Path) -> dict[str, list[Triple]]:
    """CoOp's ImageNet: ``images/train/<wnid>/`` and ``images/val/<wnid>/``, names from ``classnames.txt``.

    Labels follow the sorted class folders, as in CoOp; the test split is ``val`` (ImageNet's test
    labels are not public). Image names are sorted, where CoOp keeps the directory order, so the
    file is the same on every machine.
    """
    names_file = _required(dataset_dir / "classnames.txt")
    classnames = {}
    for line in names_file.read_text(encoding="utf-8").splitlines():
        folder, _, name = line.strip().partition(" ")
        if folder:
            classnames[folder] = name.strip()
    split: dict[str, list[Triple]] = {}
    for name, folder in (("train", "train"), ("test", "val")):
        root = _required(dataset_dir / "images" / folder)
        items = []
        for label, class_dir in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
            if class_dir.name not in classnames:
                raise UserError(f"{names_file}: no class name for folder {class_dir.name}")
            items += [[f"{folder}/{class_dir.name}/{image.name}", label, classnames[class_dir.name]]
                      for image in sorted(class_dir.iterdir()) if not image.name.startswith(".")]
        split[name] = items
    return split


def fgvc_aircraft_split(dataset_dir: Path) -> dict[str, list[Triple]]:
    """CoOp's FGVCAircraft: labels in ``variants.txt`` order, items from ``images_variant_{train,val,test}.txt``."""
    variants = [line.strip() for line in _required(dataset_dir / "variants.txt").read_text().splitlines()]
    label_of = {name: label for label, name in enumerate(v for v in variants if v)}
    split: dict[str, list[Triple]] = {}
    for name in ("train", "val", "test"):
        listing = _required(dataset_dir / f"images_variant_{name}.txt")
        items = []
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            image, _, variant = line.strip().partition(" ")
            if not image:
                continue
            if variant not in label_of:
                raise UserError(f"{listing}:{number}: variant {variant!r} is not in variants.txt")
            items.append([f"{image}.jpg", label_of[variant], variant])
        split[name] = items
    return split


def _required(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path} not found; is the dataset folder laid out as CoOp's DATASETS.md describes?")
    return path


def write_split(dataset: str, dataset_dir: str | Path) -> Path:
    """Write the split file of ``dataset`` into its dataset folder and return its path."""
    dataset_dir = Path(dataset_dir).expanduser()
    split = imagenet_split(dataset_dir) if dataset == "imagenet" else fgvc_aircraft_split(dataset_dir)
    path = dataset_dir / DATASETS[dataset][1]
    path.write_text(json.dumps(split), encoding="utf-8")
    return path
