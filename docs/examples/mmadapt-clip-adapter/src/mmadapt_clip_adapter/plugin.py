"""mmadapt hooks of mmadapt-clip-adapter: the ``clip-adapter`` adapter, ``adapt clip-adapter`` and the recipes.

pyproject.toml names this module as the plugin's entry point. It only registers, and names each
component by reference (``"package.module:object"``): mmadapt imports every plugin when ``adapt``
starts, and a reference is imported only when a recipe builds the component (the adapter, and with
it torch) or the command runs.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import ClipAdapterConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register the adapter under the name recipes use: ``adapter: {name: clip-adapter}``."""
    register(
        "clip-adapter",
        "mmadapt_clip_adapter.adapter:ClipAdapter",
        ClipAdapterConfig,
        "residual bottleneck MLP on image features (CLIP-Adapter)",
    )


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt clip-adapter``, whose options and handler live in cli.py."""
    register(
        "clip-adapter",
        "mmadapt_clip_adapter.cli:main",
        "clip-adapter tools: `adapt clip-adapter params` counts the trainable parameters at a feature width",
        add_arguments="mmadapt_clip_adapter.cli:add_arguments",
    )


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run clip-adapter-shapes`` runs the example."""
    register(__package__)
