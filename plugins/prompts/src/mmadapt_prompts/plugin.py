"""mmadapt hooks of the prompt plugin: coop, cocoop, latent-prompt and mvlpt adapters, the multitask
protocol, ``adapt bench prompts`` and ``adapt coop-split``. KgCoOp's objective, ``kg-regularizer``,
is a core builtin that these adapters support.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import CocoopConfig, CoopConfig, LatentPromptConfig, MultitaskConfig, MvlptConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``coop``, ``cocoop``, ``latent-prompt`` and ``mvlpt``."""
    register("coop", "mmadapt_prompts.coop:Coop", CoopConfig,
             "CoOp: learned prompt context around class names (IJCV 2022)")
    register("cocoop", "mmadapt_prompts.cocoop:Cocoop", CocoopConfig,
             "CoCoOp: CoOp plus an image-conditioned context bias (CVPR 2022)")
    register("latent-prompt", "mmadapt_prompts.latent:LatentPrompt", LatentPromptConfig,
             "class vectors learned in the joint space from zero-shot features (ConES-style)")
    register("mvlpt", "mmadapt_prompts.mvlpt:Mvlpt", MvlptConfig,
             "MVLPT text prompt: multitask CoOp, transferable with init_from")


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register the ``multitask`` protocol."""
    register("multitask", "mmadapt_prompts.multitask:MultitaskProtocol", MultitaskConfig,
             "train one adapter on several datasets in a merged label space, evaluate each task")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``prompts``: ``adapt bench prompts``, CoOp's step, ours truncated and ours with the shared prefix."""
    register("prompts", "mmadapt_prompts.bench:main",
             "one coop training step three ways (reference, truncated, shared prefix): time and memory",
             add_arguments="mmadapt_prompts.bench:add_arguments")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt coop-split``."""
    register("coop-split", "mmadapt_prompts.cli:main",
             "write CoOp split files for ImageNet and FGVCAircraft (the coop/* recipes)",
             add_arguments="mmadapt_prompts.cli:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
