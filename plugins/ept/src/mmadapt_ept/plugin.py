"""mmadapt hooks of the EPT plugin: adapters ``ept`` (text tower) and ``ept-visual`` (ViT image tower),
and ``adapt bench ept``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import EptConfig, EptVisualConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``ept`` and ``ept-visual``."""
    register("ept", "mmadapt_ept.text:Ept", EptConfig,
             "EPT: decomposed text prompt with prompt fusion and multi-space projection (AAAI 2025)")
    register("ept-visual", "mmadapt_ept.visual:EptVisual", EptVisualConfig,
             "EPT as shallow visual prompts with patch-token offsets on a ViT image tower")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``ept``: ``adapt bench ept`` times vanilla prompt tuning, DePT and EPT at equal budget."""
    register("ept", "mmadapt_ept.bench:main",
             "one training step of vanilla prompt tuning vs DePT vs EPT at equal budget",
             add_arguments="mmadapt_ept.bench:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
