"""Readers of the enhancement datasets: ``paired-folders`` and ``unpaired-folders``.

Both are image-to-image tasks (full-resolution pixels in [0, 1], see :func:`mmadapt.data.split_transforms`)
and share one split layout: ``root/<split>/...`` per split key, a split read when its folder
exists, ``""`` naming ``root`` itself. Paired splits are unlabeled; unpaired ones are labelled by
class folder. Everything but the pixels is checked at construction; images are decoded when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import BadImageError, DataBundle, DatasetRoot, FileSplit, Task, list_images, open_image, prompt_name
from ..errors import UserError, did_you_mean
from .config import PairedFoldersConfig, UnpairedFoldersConfig

SPLITS = ("train", "val", "test")
#: How many unmatched files a pairing error lists before it counts the rest.
LISTED_FILES = 20


def _split_folders(root: DatasetRoot, config: Any) -> dict[str, Path]:
    """Split name -> folder, for the split keys whose folder exists."""
    folders = {}
    for name in SPLITS:
        subfolder = getattr(config, name)
        if subfolder is None:
            continue
        folder = root.resolve(subfolder, f"data.{name}") if subfolder else root.path
        if folder.is_dir():
            folders[name] = folder
    if not folders:
        wanted = ", ".join(f"{root.path / getattr(config, n)}/" for n in SPLITS if getattr(config, n))
        raise UserError(
            f"data.root: {root.path} has none of the split folders {wanted}; add them, or set a split key to "
            "'' to read root itself (e.g. data.test='')"
        )
    return folders


# -- paired-folders ---------------------------------------------------------------------------------


class PairedFileSplit(FileSplit):
    """Unlabeled (input, target) image files of equal size: items ``{"image", "target"}``."""

    def __init__(self, inputs: list[Path], targets: list[Path], on_bad_image: str) -> None:
        super().__init__(inputs, [None] * len(inputs), 0, on_bad_image=on_bad_image)
        self.targets = [str(path) for path in targets]

    def _load(self, i: int) -> dict[str, Any]:
        image, target = open_image(self.paths[i]), open_image(self.targets[i])
        if image.size != target.size:
            raise BadImageError(
                f"{self.targets[i]}: target is {target.width}x{target.height} but its input {self.paths[i]} is "
                f"{image.width}x{image.height}; paired images must have the same size. Fix or remove the pair, "
                "or set data.on_bad_image=skip to skip such pairs and count them"
            )
        return {"image": image, "target": target}


def build_paired_folders(config: PairedFoldersConfig) -> DataBundle:
    """Every split's input and target images, matched by their path without extension."""
    root = DatasetRoot(config.root)
    splits = {}
    for name, folder in _split_folders(root, config).items():
        inputs = _images_by_stem(root, folder / config.input_folder, f"data.input_folder ({name} split)")
        targets = _images_by_stem(root, folder / config.target_folder, f"data.target_folder ({name} split)")
        _check_matched(folder, config, inputs, targets)
        stems = sorted(inputs)
        splits[name] = PairedFileSplit([inputs[s] for s in stems], [targets[s] for s in stems], config.on_bad_image)
    return DataBundle(Task(classnames=[], kind="image-to-image", name=root.path.name), splits)


def _images_by_stem(root: DatasetRoot, folder: Path, key: str) -> dict[str, Path]:
    """``{relative path without extension: path}`` of the images under ``folder``."""
    if not folder.is_dir():
        raise UserError(f"{key}: folder {folder} not found; create it or set {key.split()[0]} to its name")
    found: dict[str, Path] = {}
    for path in list_images(folder):
        stem = path.relative_to(folder).with_suffix("").as_posix()
        if stem in found:
            raise UserError(
                f"{folder}: {found[stem].name} and {path.name} have the same stem, so neither can be paired; "
                "rename or remove one of them"
            )
        found[stem] = root.resolve(path.relative_to(root.path), where=str(path))
    return found


def _check_matched(folder: Path, config: PairedFoldersConfig, inputs: dict[str, Path],
                   targets: dict[str, Path]) -> None:
    unmatched = [inputs[s] for s in sorted(set(inputs) - set(targets))]
    unmatched += [targets[s] for s in sorted(set(targets) - set(inputs))]
    if not unmatched:
        if not inputs:
            raise UserError(f"{folder / config.input_folder}: no images; add input images and their targets")
        return
    shown = [str(path.relative_to(folder)) for path in unmatched[:LISTED_FILES]]
    more = f" and {len(unmatched) - LISTED_FILES} more" if len(unmatched) > LISTED_FILES else ""
    raise UserError(
        f"{folder}: {len(unmatched)} image(s) without a partner of the same stem in "
        f"{config.input_folder}/ or {config.target_folder}/: {', '.join(shown)}{more}; add the missing partners "
        "or remove these files"
    )


# -- unpaired-folders -------------------------------------------------------------------------------


def build_unpaired_folders(config: UnpairedFoldersConfig) -> DataBundle:
    """Images labelled by class folder; classes are ``config.classes`` or the training split's folders."""
    root = DatasetRoot(config.root)
    folders = _split_folders(root, config)
    first = folders.get("train") or next(iter(folders.values()))
    found = _class_folders(first)
    classes = list(config.classes) or found
    missing = [name for name in classes if name not in found]
    if missing:
        raise UserError(
            f"data.classes: {', '.join(map(repr, missing))} not a folder of {first}"
            f"{did_you_mean(missing[0], found)}; folders: {', '.join(found) or '(none)'}"
        )
    if len(classes) < 2:
        raise UserError(f"{first}: unpaired-folders needs at least two class folders (e.g. backlit/ and well-lit/); "
                        f"found {', '.join(classes) or 'none'}")
    splits = {name: _class_split(root, folder, classes, config) for name, folder in folders.items()}
    task = Task(classnames=[prompt_name(c) for c in classes], kind="image-to-image",
                templates=list(config.templates), name=root.path.name)
    return DataBundle(task, splits)


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_split(root: DatasetRoot, folder: Path, classes: list[str], config: UnpairedFoldersConfig) -> FileSplit:
    paths, labels = [], []
    for label, name in enumerate(classes):
        for path in list_images(folder / name) if (folder / name).is_dir() else []:
            paths.append(root.resolve(path.relative_to(root.path), where=str(path)))
            labels.append(label)
    if not paths:
        raise UserError(f"{folder}: no images in the class folders {', '.join(classes)}; add images or remove "
                        "the split folder")
    return FileSplit(paths, labels, len(classes), on_bad_image=config.on_bad_image)
