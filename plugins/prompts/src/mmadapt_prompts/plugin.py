"""mmadapt hooks of the prompt plugin: coop, cocoop, latent-prompt and mvlpt adapters, the multitask
protocol, ``adapt bench prompts`` and ``adapt coop-split``. KgCoOp's objective, ``kg-regularizer``,
is a core builtin that these adapters support.

Cheap to import: configs and hooks only; torch loads inside the factories.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmadapt import hookimpl

from .config import (
    CocoopConfig,
    CoopConfig,
    LatentPromptConfig,
    MultitaskConfig,
    MvlptConfig,
)

if TYPE_CHECKING:
    from mmadapt import Adapter, Backbone, Protocol, Task


def build_coop(config: CoopConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``coop`` adapter (torch loads here, not when the plugin is imported)."""
    from .coop import Coop

    return Coop(config, backbone, task)


def build_cocoop(config: CocoopConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``cocoop`` adapter (torch loads here, not when the plugin is imported)."""
    from .cocoop import Cocoop

    return Cocoop(config, backbone, task)


def build_latent_prompt(config: LatentPromptConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``latent-prompt`` adapter (torch loads here, not when the plugin is imported)."""
    from .latent import LatentPrompt

    return LatentPrompt(config, backbone, task)


def build_mvlpt(config: MvlptConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``mvlpt`` adapter (torch loads here, not when the plugin is imported)."""
    from .mvlpt import Mvlpt

    return Mvlpt(config, backbone, task)


def build_multitask(config: MultitaskConfig) -> Protocol:
    """The ``multitask`` protocol."""
    from .multitask import MultitaskProtocol

    return MultitaskProtocol(config)


def _bench(args: argparse.Namespace) -> dict[str, float]:
    from .bench import main

    return main(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="ViT-B-16", help="open_clip architecture, random weights (default ViT-B-16)")
    parser.add_argument("--classes", type=int, default=100, help="number of classes (default 100)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    parser.add_argument("--n-ctx", type=int, default=16, help="context tokens (default 16, CoOp's)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed steps of each kind; the median is reported (default 1)")


def _coop_split(args: argparse.Namespace) -> int:
    from .coop_splits import main

    return main(args)


def _coop_split_arguments(parser: argparse.ArgumentParser) -> None:
    from .coop_splits import add_arguments

    add_arguments(parser)


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``coop``, ``cocoop``, ``latent-prompt`` and ``mvlpt``."""
    register("coop", build_coop, CoopConfig, "CoOp: learned prompt context around class names (IJCV 2022)")
    register("cocoop", build_cocoop, CocoopConfig, "CoCoOp: CoOp plus an image-conditioned context bias (CVPR 2022)")
    register("latent-prompt", build_latent_prompt, LatentPromptConfig,
             "class vectors learned in the joint space from zero-shot features (ConES-style)")
    register("mvlpt", build_mvlpt, MvlptConfig, "MVLPT text prompt: multitask CoOp, transferable with init_from")


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register the ``multitask`` protocol."""
    register("multitask", build_multitask, MultitaskConfig,
             "train one adapter on several datasets in a merged label space, evaluate each task")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``prompts``: ``adapt bench prompts`` times our coop step against CoOp's."""
    register("prompts", _bench, "one training step of coop timed against a reference CoOp step",
             add_arguments=_bench_arguments)


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt coop-split``."""
    register("coop-split", _coop_split, "write CoOp split files for ImageNet and FGVCAircraft (recipes/coop/)",
             add_arguments=_coop_split_arguments)
