"""mmadapt hooks of the EPT plugin: adapters ``ept`` (text tower) and ``ept-visual`` (ViT image tower),
and ``adapt bench ept``.

Cheap to import: configs and hooks only; torch loads inside the factories.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmadapt import hookimpl

from .config import EptConfig, EptVisualConfig

if TYPE_CHECKING:
    from mmadapt import Adapter, Backbone, Task


def build_ept(config: EptConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``ept`` adapter (torch loads here, not when the plugin is imported)."""
    from .text import Ept

    return Ept(config, backbone, task)


def build_ept_visual(config: EptVisualConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``ept-visual`` adapter (torch loads here, not when the plugin is imported)."""
    from .visual import EptVisual

    return EptVisual(config, backbone, task)


def _bench(args: argparse.Namespace) -> dict[str, float]:
    from .bench import main

    return main(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from .bench import add_arguments

    add_arguments(parser)


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``ept`` and ``ept-visual``."""
    register("ept", build_ept, EptConfig,
             "EPT: decomposed text prompt with prompt fusion and multi-space projection (AAAI 2025)")
    register("ept-visual", build_ept_visual, EptVisualConfig,
             "EPT as shallow visual prompts with patch-token offsets on a ViT image tower")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``ept``: ``adapt bench ept`` times vanilla prompt tuning, DePT and EPT at equal budget."""
    register("ept", _bench, "one training step of vanilla prompt tuning vs DePT vs EPT at equal budget",
             add_arguments=_bench_arguments)
