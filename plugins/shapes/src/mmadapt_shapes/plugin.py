"""mmadapt hooks of ShapesWorld: the ``shapes`` dataset, the ``shapes-clip`` backbone, ``adapt shapes`` and
``adapt bench shapes``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import ShapesClipConfig, ShapesConfig


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    """Register the ``shapes`` dataset."""
    register("shapes", "mmadapt_shapes.dataset:build_bundle", ShapesConfig,
             "ShapesWorld: generated shapes, colours, lighting (offline)")


@hookimpl
def register_backbones(register: Callable[..., None]) -> None:
    """Register the ``shapes-clip`` backbone."""
    register("shapes-clip", "mmadapt_shapes.backbone:build_backbone", ShapesClipConfig,
             "small CLIP pretrained on ShapesWorld (offline)")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt shapes`` (pretrain, evaluate, samples)."""
    register("shapes", "mmadapt_shapes.cli:main", "ShapesWorld: pretrain or evaluate shapes-clip, save sample grids",
             add_arguments="mmadapt_shapes.cli:add_arguments")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``shapes``: ``adapt bench shapes`` measures the generator's images per second."""
    register("shapes", "mmadapt_shapes.bench:main", "ShapesWorld images rendered per second on one thread",
             add_arguments="mmadapt_shapes.bench:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
