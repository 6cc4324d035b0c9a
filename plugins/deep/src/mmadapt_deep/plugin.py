"""mmadapt hooks of mmadapt-deep.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import PromptSRCObjectiveConfig


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register ``promptsrc``."""
    register("promptsrc", "mmadapt_deep.self_regulation:build_promptsrc_objective", PromptSRCObjectiveConfig,
             "PromptSRC: CE + L1 to frozen text and image features + KL to zero-shot logits (ICCV 2023)")
