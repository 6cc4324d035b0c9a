"""mmadapt hooks of mmadapt-deep.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import MmrlConfig, MmrlLossConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``mmrl``."""
    register("mmrl", "mmadapt_deep.mmrl:Mmrl", MmrlConfig,
             "MMRL: shared representation tokens in both towers' upper blocks, decoupled inference (CVPR 2025)")


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register ``mmrl``."""
    register("mmrl", "mmadapt_deep.mmrl_loss:build_mmrl_loss", MmrlLossConfig,
             "MMRL: class-token and representation cross-entropy + pull of both towers toward CLIP's features")
