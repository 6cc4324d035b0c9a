"""Builtin datasets: image folders, CoOp split files and multi-label annotation files.

This module is imported whenever plugins load, so it holds only the config dataclasses and the
registration; the factories import the torch-based implementations
(:mod:`mmadapt.builtin.image_datasets`) when a recipe builds a dataset.

Relative paths in configs are relative to the working directory (``root``) or to ``root`` (the
annotation files). Paths inside annotation files are relative to ``root`` and may not leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from ..config import DataConfig
from ..hookspecs import hookimpl


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
    """Multi-label annotations: COCO-style instances JSON or ``path,labels`` CSV, per split.

    Class ids follow the alphabetical order of the class names (the MULTI-LANE convention).
    """

    #: Folder the images are under.
    root: str = MISSING
    #: Annotation files (``.json`` COCO instances or ``.csv``); relative to ``root`` unless absolute.
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


def build_imagefolder(config: ImageFolderConfig) -> Any:
    """Build an image-folder dataset (see :func:`mmadapt.builtin.image_datasets.build_imagefolder`)."""
    from .image_datasets import build_imagefolder as build

    return build(config)


def build_coop(config: CoopConfig) -> Any:
    """Build a CoOp split-file dataset (see :func:`mmadapt.builtin.image_datasets.build_coop`)."""
    from .image_datasets import build_coop as build

    return build(config)


def build_multilabel(config: MultiLabelConfig) -> Any:
    """Build a multi-label dataset (see :func:`mmadapt.builtin.image_datasets.build_multilabel`)."""
    from .image_datasets import build_multilabel as build

    return build(config)


@hookimpl
def register_datasets(register):
    """Register the builtin datasets."""
    register("imagefolder", build_imagefolder, ImageFolderConfig, "Images in root/{train,val,test}/<class>/ folders")
    register("coop", build_coop, CoopConfig, "CoOp/Dassl split_zhou_<Name>.json over an image folder")
    register("multilabel", build_multilabel, MultiLabelConfig, "Multi-label images from COCO-style JSON or CSV files")
