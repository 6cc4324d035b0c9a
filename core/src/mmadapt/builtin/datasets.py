"""Builtin datasets: image folders, CoOp split files, multi-label annotations, paired and unpaired folders.

This module is imported whenever plugins load, so it holds only the registration; the configs live
in :mod:`mmadapt.builtin.dataset_configs`, and the factories import the torch-based readers
(:mod:`mmadapt.builtin.image_datasets`, :mod:`mmadapt.builtin.folder_pairs`) when a recipe builds a
dataset.

Relative paths in configs are relative to the working directory (``root``) or to ``root`` (the
annotation files). Paths inside annotation files are relative to ``root`` and may not leave it.
"""

from __future__ import annotations

from typing import Any

from ..hookspecs import hookimpl
from .config import (
    CoopConfig,
    ImageFolderConfig,
    MultiLabelConfig,
    PairedFoldersConfig,
    UnpairedFoldersConfig,
)

__all__ = [
    "CoopConfig",
    "ImageFolderConfig",
    "MultiLabelConfig",
    "PairedFoldersConfig",
    "UnpairedFoldersConfig",
    "build_coop",
    "build_imagefolder",
    "build_multilabel",
    "build_paired_folders",
    "build_unpaired_folders",
    "register_datasets",
]


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


def build_paired_folders(config: PairedFoldersConfig) -> Any:
    """Build a paired-folders dataset (see :func:`mmadapt.builtin.folder_pairs.build_paired_folders`)."""
    from .folder_pairs import build_paired_folders as build

    return build(config)


def build_unpaired_folders(config: UnpairedFoldersConfig) -> Any:
    """Build an unpaired-folders dataset (see :func:`mmadapt.builtin.folder_pairs.build_unpaired_folders`)."""
    from .folder_pairs import build_unpaired_folders as build

    return build(config)


@hookimpl
def register_datasets(register):
    """Register the builtin datasets."""
    register("imagefolder", build_imagefolder, ImageFolderConfig, "Images in root/{train,val,test}/<class>/ folders")
    register("coop-split", build_coop, CoopConfig, "CoOp/Dassl split_zhou_<Name>.json over an image folder")
    register("multilabel", build_multilabel, MultiLabelConfig,
             "Multi-label images from COCO-style JSON, CSV files or a Pascal VOC layout")
    register("paired-folders", build_paired_folders, PairedFoldersConfig,
             "Image-to-image pairs: input/ and target/ folders matched by file stem")
    register("unpaired-folders", build_unpaired_folders, UnpairedFoldersConfig,
             "Unpaired full-resolution images labelled by folder (e.g. backlit/ and well-lit/)")
