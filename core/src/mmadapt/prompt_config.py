"""Recipe checks shared by adapters that learn a text-prompt context. Cheap to import: no torch.

Plugins call them from their config dataclasses' ``__post_init__``; the recipe loader turns the
``ValueError`` into an error naming the recipe file and key.
"""

from __future__ import annotations

from .config import check_choice

#: Where a :class:`mmadapt.PromptLearner` puts the class name relative to the learned context.
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def check_prompt_context(n_ctx: int | None, init: str | None, position: str, section: str = "adapter") -> None:
    """Raise ``ValueError`` for a context length below 1, blank init words or an unknown position.

    ``n_ctx`` and ``init`` are the recipe keys :func:`mmadapt.new_context` reads,
    ``position`` is ``class_token_position``; ``section`` names the recipe section in the message.
    """
    check_choice(section, "class_token_position", position, CLASS_TOKEN_POSITIONS)
    if n_ctx is not None and n_ctx < 1:
        raise ValueError(f"{section}.n_ctx must be at least 1; got {n_ctx}")
    if init is not None and not init.strip():
        raise ValueError(f"{section}.init is empty; give words such as 'a photo of a', or null for a random context")
