"""CoOp (Zhou et al., IJCV 2022): a learned context in front of, around or after each class name."""

from __future__ import annotations

from typing import Any

import torch
from mmadapt import new_context

from .base import PromptAdapter


class Coop(PromptAdapter):
    """Context Optimization: logits = logit_scale * cos(image feature, prompt text feature).

    The prompts do not depend on the image, so the text encoder runs once per training step for all
    classes (not per image) and once per evaluation (``cached_in_eval``).
    """

    paper = "Zhou et al., Learning to Prompt for Vision-Language Models, IJCV 2022"

    def initial_context(self) -> torch.Tensor:
        """Words (``init``), else N(0, 0.02); one context per class with ``csc``."""
        config = self.config
        return new_context(self.backbone, config.n_ctx, config.init, self.task.n_classes if config.csc else None)

    def text_features(self) -> torch.Tensor:
        """Normalised text features ``(n_classes, embed_dim)`` of the current prompts (shared prefix run once)."""
        return self.prompt.encode_context(self.backbone, self.prompt.ctx)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of the batch's images against the learned prompts' text features (cached in eval)."""
        image = self.image_features(batch)
        text = self.cached_in_eval("text_features", self.text_features)
        logits = self.backbone.logit_scale * image @ text.to(image.dtype).t()
        return self.outputs(logits, image, text)
