"""Which images of a split are the backlit inputs and which the well-lit references.

Paired data (``paired-folders``, ShapesWorld ``backlit-pairs``; items with a ``target``): every
item's ``image`` is backlit and its ``target`` well-lit. Unpaired data (``unpaired-folders``): items
are labelled by class folder, and the protocol's ``backlit_class`` and ``well_lit_class`` name the two.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mmadapt import DataBundle, Split, UserError

from .config import StageConfig


@dataclass
class Roles:
    """The backlit inputs and the well-lit references of one split, each a split and the batch key of its image."""

    backlit: Split
    well_lit: Split
    well_lit_key: str

    @property
    def paired(self) -> bool:
        """Whether the well-lit images are the backlit items' own targets."""
        return self.well_lit_key == "target"


def split_roles(bundle: DataBundle, name: str, config: StageConfig) -> Roles:
    """The roles in split ``name``; a ``UserError`` naming the folder class or split that is missing or empty."""
    split = bundle.split(name)
    if is_paired(split):
        return Roles(split, split, "target")
    classes = list(bundle.task.classnames)
    ids = {}
    for key, wanted in (("backlit_class", config.backlit_class), ("well_lit_class", config.well_lit_class)):
        if wanted not in classes:
            raise UserError(
                f"protocol.{key}: {wanted!r} is not a class folder of the data"
                f"{_closest(wanted, classes)}; its classes are {', '.join(classes)}"
            )
        ids[key] = classes.index(wanted)
    parts = {}
    for key, class_id in ids.items():
        indices = [i for i, label in enumerate(split.labels) if label == class_id]
        if not indices:
            raise UserError(
                f"the {name} split's {classes[class_id]!r} folder has no images; unpaired training needs "
                f"both backlit and well-lit images: add images there or set protocol.{key}"
            )
        parts[key] = split.subset(indices)
    return Roles(parts["backlit_class"], parts["well_lit_class"], "image")


def is_paired(split: Split) -> bool:
    """Whether the split's items carry a ``target`` image (paired data); decodes its first item."""
    return len(split) > 0 and "target" in split.load(0)


def check_bundle(bundle: DataBundle, config: StageConfig) -> DataBundle:
    """Refuse data a lit protocol cannot use, before the adapter is built; return it unchanged."""
    if bundle.task.kind != "image-to-image":
        raise UserError(
            f"the data of task {bundle.task.name!r} is {bundle.task.kind}; lit protocols enhance "
            "images: use paired-folders, unpaired-folders or shapes task backlit-pairs"
        )
    split_roles(bundle, "train", config)
    return bundle


def evaluation_inputs(bundle: DataBundle, name: str, config: StageConfig) -> Split:
    """The images an evaluation enhances: every item of a paired split, the backlit class of an unpaired one."""
    split = bundle.split(name)
    if is_paired(split) or not split.labeled:
        return split
    classes = list(bundle.task.classnames)
    if config.backlit_class not in classes:
        return split
    backlit = classes.index(config.backlit_class)
    return split.subset([i for i, label in enumerate(split.labels) if label == backlit])


def _closest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
