"""mmadapt hooks of mmadapt-deep: the ``ivlp``, ``maple``, ``promptsrc`` and ``mmrl`` adapters, the
``promptsrc`` and ``mmrl`` objectives and ``adapt bench deep``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import IvlpConfig, MapleConfig, MmrlConfig, MmrlLossConfig, PromptSRCConfig, PromptSRCObjectiveConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``ivlp``, ``maple``, ``promptsrc`` and ``mmrl``."""
    register("ivlp", "mmadapt_deep.ivlp:Ivlp", IvlpConfig,
             "IVLP: independent learned text and image tokens at the first J layers of both towers")
    register("maple", "mmadapt_deep.maple:Maple", MapleConfig,
             "MaPLe: deep text prompts, image tokens coupled to them by a linear map per layer (CVPR 2023)")
    register("promptsrc", "mmadapt_deep.promptsrc:PromptSRC", PromptSRCConfig,
             "PromptSRC: IVLP prompts (n = 4, J = 9) averaged over epochs by Gaussian prompt aggregation (ICCV 2023)")
    register("mmrl", "mmadapt_deep.mmrl:Mmrl", MmrlConfig,
             "MMRL: shared representation tokens in both towers' upper blocks, decoupled inference (CVPR 2025)")


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register ``promptsrc`` and ``mmrl``."""
    register("promptsrc", "mmadapt_deep.self_regulation:build_promptsrc_objective", PromptSRCObjectiveConfig,
             "PromptSRC: CE + L1 to frozen text and image features + KL to zero-shot logits (ICCV 2023)")
    register("mmrl", "mmadapt_deep.mmrl_loss:build_mmrl_loss", MmrlLossConfig,
             "MMRL: class-token and representation cross-entropy + pull of both towers toward CLIP's features")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``deep``: ``adapt bench deep``, a MaPLe step against the 77-position reference and a CoOp step."""
    register("deep", "mmadapt_deep.bench:main",
             "one maple training step against the reference computation and a CoOp step: time and memory",
             add_arguments="mmadapt_deep.bench:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
