"""mmadapt hooks of the KAPT plugin: the ``kapt`` adapter and ``adapt kapt keywords``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import KaptConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``kapt``."""
    register("kapt", "mmadapt_kapt.kapt:Kapt", KaptConfig,
             "KAPT: discrete + continuous knowledge prompts and a visual adaptation head (ICCV 2023)")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt kapt`` (``adapt kapt keywords KNOWLEDGE_FILE [--top-k K]``)."""
    register("kapt", "mmadapt_kapt.cli:main", "KAPT tools: `adapt kapt keywords FILE` prints the keywords per class",
             add_arguments="mmadapt_kapt.cli:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
