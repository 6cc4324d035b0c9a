"""mmadapt hooks of the lit plugin: adapters ``rave``, ``clip-lit``, ``clip-lit-latent``; protocols ``rave`` and
``clip-lit``; metric ``lit-exposure``; ``adapt lit``; ``adapt bench lit``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import ClipLitConfig, ClipLitLatentConfig, ClipLitProtocolConfig, RaveConfig, RaveProtocolConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``rave``, ``clip-lit`` and ``clip-lit-latent``."""
    register(
        "rave",
        "mmadapt_lit.adapter:RaveAdapter",
        RaveConfig,
        "RAVE: an enhancement network guided along a CLIP residual vector (ECCV 2024)",
    )
    register(
        "clip-lit",
        "mmadapt_lit.adapter:ClipLitAdapter",
        ClipLitConfig,
        "CLIP-LIT: an enhancement network guided by a learned prompt pair (ICCV 2023)",
    )
    register(
        "clip-lit-latent",
        "mmadapt_lit.adapter:ClipLitLatentAdapter",
        ClipLitLatentConfig,
        "CLIP-LIT with two free joint-space vectors instead of prompts (no text tower)",
    )


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``rave`` and ``clip-lit``."""
    register(
        "rave",
        "mmadapt_lit.protocols:RaveProtocol",
        RaveProtocolConfig,
        "residual pass, identity warm-up, enhancement along the residual",
    )
    register(
        "clip-lit",
        "mmadapt_lit.protocols:ClipLitProtocol",
        ClipLitProtocolConfig,
        "prompt init, identity warm-up, rounds of enhancement and prompt refinement",
    )


@hookimpl
def register_metrics(register: Callable[..., None]) -> None:
    """Register ``lit-exposure``."""
    register(
        "lit-exposure",
        "mmadapt_lit.exposure:ExposureMetric.from_config",
        None,
        "mean luminance and fractions of pixels with Y < 0.1 and Y > 0.95 of outputs['images']",
    )


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt lit`` (enhance, residual-words, photos)."""
    register(
        "lit",
        "mmadapt_lit.cli:main",
        "apply a trained enhancer to images, or list the tokens nearest RAVE's residual",
        add_arguments="mmadapt_lit.cli:add_arguments",
    )


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``lit``: training-step time of each network, and RAVE vs CLIP-LIT time to a guidance target."""
    register(
        "lit",
        "mmadapt_lit.bench:main",
        "training step of each enhancer at 512² and 1024²; RAVE vs CLIP-LIT time to target",
        add_arguments="mmadapt_lit.bench:add_arguments",
    )


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
