"""mmadapt hooks of the KAPT plugin: the ``kapt`` adapter and ``adapt kapt keywords``.

Cheap to import: the config and hooks only; torch loads inside the factory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmadapt import hookimpl

from .config import KaptConfig

if TYPE_CHECKING:
    from mmadapt import Adapter, Backbone, Task


def build_kapt(config: KaptConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``kapt`` adapter (torch loads here, not when the plugin is imported)."""
    from .kapt import Kapt

    return Kapt(config, backbone, task)


def _kapt_command(args: argparse.Namespace) -> int:
    from .keywords import main

    return main(args)


def _kapt_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="kapt_command", required=True, metavar="COMMAND")
    keywords = commands.add_parser("keywords", help="print every class's keywords of a knowledge file")
    keywords.add_argument("knowledge_file", metavar="KNOWLEDGE_FILE", help="YAML or JSON: class -> description")
    keywords.add_argument("--top-k", type=int, default=2, help="keywords per class (default 2, the adapter's)")


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``kapt``."""
    register("kapt", build_kapt, KaptConfig,
             "KAPT: discrete + continuous knowledge prompts and a visual adaptation head (ICCV 2023)")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt kapt`` (``adapt kapt keywords KNOWLEDGE_FILE [--top-k K]``)."""
    register("kapt", _kapt_command, "KAPT tools: `adapt kapt keywords FILE` prints the keywords per class",
             add_arguments=_kapt_arguments)
