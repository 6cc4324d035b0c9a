"""mmadapt hooks of the lit plugin: adapters ``rave``, ``clip-lit``, ``clip-lit-latent``; protocols ``rave`` and
``clip-lit``; metric ``lit-exposure``; ``adapt lit``; ``adapt bench lit``.

Cheap to import: configs and hooks only; torch and diffusers load inside the factories.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mmadapt import hookimpl

from .config import ClipLitConfig, ClipLitLatentConfig, ClipLitProtocolConfig, RaveConfig, RaveProtocolConfig

if TYPE_CHECKING:
    from mmadapt import Adapter, Backbone, Task


def build_rave(config: RaveConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``rave`` adapter (torch loads here, not when the plugin is imported)."""
    from .adapter import RaveAdapter

    return RaveAdapter(config, backbone, task)


def build_clip_lit(config: ClipLitConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``clip-lit`` adapter."""
    from .adapter import ClipLitAdapter

    return ClipLitAdapter(config, backbone, task)


def build_clip_lit_latent(config: ClipLitLatentConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``clip-lit-latent`` adapter."""
    from .adapter import ClipLitLatentAdapter

    return ClipLitLatentAdapter(config, backbone, task)


def build_rave_protocol(config: RaveProtocolConfig) -> Any:
    """The ``rave`` protocol."""
    from .protocols import RaveProtocol

    return RaveProtocol(config)


def build_clip_lit_protocol(config: ClipLitProtocolConfig) -> Any:
    """The ``clip-lit`` protocol."""
    from .protocols import ClipLitProtocol

    return ClipLitProtocol(config)


def build_exposure(config: Any) -> Any:
    """The ``lit-exposure`` metric."""
    from .images import ExposureMetric

    metric = ExposureMetric()
    metric.reset()
    return metric


def _command(args: argparse.Namespace) -> int:
    from .cli import main

    return main(args)


def _command_arguments(parser: argparse.ArgumentParser) -> None:
    from .cli import add_arguments

    add_arguments(parser)


def _bench(args: argparse.Namespace) -> dict[str, float]:
    from .bench import main

    return main(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from .bench import add_arguments

    add_arguments(parser)


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``rave``, ``clip-lit`` and ``clip-lit-latent``."""
    register(
        "rave", build_rave, RaveConfig, "RAVE: an enhancement network guided along a CLIP residual vector (ECCV 2024)"
    )
    register(
        "clip-lit",
        build_clip_lit,
        ClipLitConfig,
        "CLIP-LIT: an enhancement network guided by a learned prompt pair (ICCV 2023)",
    )
    register(
        "clip-lit-latent",
        build_clip_lit_latent,
        ClipLitLatentConfig,
        "CLIP-LIT with two free joint-space vectors instead of prompts (no text tower)",
    )


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``rave`` and ``clip-lit``."""
    register(
        "rave",
        build_rave_protocol,
        RaveProtocolConfig,
        "residual pass, identity warm-up, enhancement along the residual",
    )
    register(
        "clip-lit",
        build_clip_lit_protocol,
        ClipLitProtocolConfig,
        "prompt init, identity warm-up, rounds of enhancement and prompt refinement",
    )


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    """Register ``lit-exposure``."""
    register(
        "lit-exposure",
        build_exposure,
        None,
        "mean luminance and fractions of pixels with Y < 0.1 and Y > 0.95 of outputs['images']",
    )


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt lit`` (enhance, residual-words)."""
    register(
        "lit",
        _command,
        "apply a trained enhancer to images, or list the tokens nearest RAVE's residual",
        add_arguments=_command_arguments,
    )


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``lit``: training-step time of each network, and RAVE vs CLIP-LIT time to a guidance target."""
    register(
        "lit",
        _bench,
        "training step of each enhancer at 512² and 1024²; RAVE vs CLIP-LIT time to target",
        add_arguments=_bench_arguments,
    )
