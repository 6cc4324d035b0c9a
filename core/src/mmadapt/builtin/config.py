"""Config dataclasses of the builtin datasets: the schema of each one's ``data:`` section.

They live apart from the registration (:mod:`mmadapt.builtin.datasets`) and the readers
(:mod:`mmadapt.builtin.image_datasets`, :mod:`mmadapt.builtin.folder_pairs`), so both import them
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from ..config import DataConfig


def _default_templates() -> list[str]:
    return ["a photo of a {}."]


def _check_templates(templates: list[str]) -> None:
    for template in templates:
        if "{}" not in template:
            raise ValueError(f"data.templates: template {template!r} has no '{{}}' where the class name goes")


@dataclass
class ImageFolderConfig(DataConfig):
    """``root/train/<class>/<image>``, optional ``root/val/`` and ``root/test/`` with the same classes."""

    #: Folder holding ``train/`` (required), ``val/`` and ``test/``.
    root: str = MISSING
    #: Zero-shot prompt templates; ``{}`` is the class name.
    templates: list[str] = field(default_factory=_default_templates)
    #: Optional prompt name per class folder; other folders use their name with ``_`` as a space.
    classnames: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class CoopConfig(DataConfig):
    """CoOp's ``split_zhou_<Name>.json``: ``train``/``val``/``test`` lists of ``[path, label, classname]``."""

    #: Image folder the split file's paths are relative to.
    root: str = MISSING
    #: The split JSON; relative to ``root`` unless absolute.
    split_file: str = MISSING
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class MultiLabelConfig(DataConfig):
    """Multi-label annotations per split: COCO-style instances JSON, ``path,labels`` CSV, or a
    Pascal VOC image set (``ImageSets/Main/<split>.txt`` with ``Annotations/<id>.xml``).

    Class ids follow the alphabetical order of the class names (the MULTI-LANE convention).
    """

    #: Folder the images are under (VOC: the ``VOC2007`` folder holding ``Annotations/``).
    root: str = MISSING
    #: Annotation files (``.json`` COCO instances, ``.csv``, or a VOC ``.txt`` image set); relative to
    #: ``root`` unless absolute.
    train_file: str = MISSING
    test_file: str = MISSING
    val_file: str | None = None
    #: Subfolders of ``root`` holding each split's images (COCO: ``train2014``, ``val2014``).
    train_images: str = ""
    val_images: str = ""
    test_images: str = ""
    templates: list[str] = field(default_factory=_default_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)


@dataclass
class PairedFoldersConfig(DataConfig):
    """Input and target images matched by file stem: ``root/<split>/<input>/`` and ``root/<split>/<target>/``."""

    #: Folder holding the split folders.
    root: str = MISSING
    #: Subfolder of ``root`` per split; a split is read when its folder exists, ``""`` is ``root``
    #: itself, ``null`` leaves the split out.
    train: str | None = "train"
    val: str | None = "val"
    test: str | None = "test"
    #: Names of the input and target folders inside each split folder (LOL: ``low`` and ``high``).
    input_folder: str = "input"
    target_folder: str = "target"


def _lighting_templates() -> list[str]:
    return ["a {} photo."]


@dataclass
class UnpairedFoldersConfig(DataConfig):
    """Unpaired images labelled by folder: ``root/<split>/<class>/`` (e.g. ``backlit/`` and ``well-lit/``)."""

    root: str = MISSING
    #: As in ``paired-folders``: subfolder of ``root`` per split, ``""`` is ``root``, ``null`` leaves it out.
    train: str | None = "train"
    val: str | None = "val"
    test: str | None = "test"
    #: Class folders in label order; empty: every folder of the training split, sorted.
    classes: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=_lighting_templates)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_templates(self.templates)
