"""What every text-prompt adapter shares: the prompt learner, class switching and hand-written targets."""

from __future__ import annotations

from typing import Any

import torch
from mmadapt import Adapter, Backbone, HandwrittenTextFeatures, PromptLearner, Task


class PromptAdapter(Adapter):
    """An adapter whose classes are prompts through the frozen text encoder.

    The image tower is neither prompted nor trained, so image features are frozen and the engine
    caches them when no augmentation is used. Subclasses choose the initial context
    (:meth:`initial_context`) and turn a batch into logits.
    """

    frozen_image_features = True
    #: Put ``handwritten_text_features`` in the training outputs; objectives that need them (KgCoOp)
    #: switch this on, so nothing else pays for the hand-written prompts' text pass.
    report_handwritten: bool = False

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        backbone.require_token_text_tower(
            f"{type(self).__name__.lower()} learns text prompts", "use a CLIP backbone"
        )
        self.prompt = PromptLearner(backbone, task.classnames, self.initial_context(), config.class_token_position)
        # Hand-written prompt features of the current classes, computed once on first use.
        self.handwritten = HandwrittenTextFeatures()

    def initial_context(self) -> torch.Tensor:
        """The context the prompt learner starts from, ``(n_ctx, width)`` or ``(n_classes, n_ctx, width)``."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """``prompt``: the learned context."""
        return {"prompt": [self.prompt.ctx]}

    def set_task(self, task: Task) -> None:
        """Rebuild the frozen prompt rows for another class list (base-to-novel evaluation)."""
        self.prompt.set_classnames(self.backbone, task.classnames)
        self.task = task
        self.clear_eval_cache()

    def encode_prompts(self, prompts: torch.Tensor) -> torch.Tensor:
        """Normalised text features of prompt embeddings ``(..., n_classes, L, width)`` in one encoder call."""
        return self.prompt.encode(self.backbone, prompts)

    def handwritten_text_features(self) -> torch.Tensor:
        """Normalised features of the hand-written prompts of the current classes (KgCoOp's targets).

        Templates: ``adapter.templates``, else the dataset's.
        """
        return self.handwritten(self.backbone, self.task.classnames, self.config.templates or self.task.templates)

    def outputs(self, logits: torch.Tensor, image: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        """The output dict, with the hand-written features while training when an objective asked for them."""
        out = {"logits": logits, "features": image, "text_features": text}
        if self.training and self.report_handwritten:
            out["handwritten_text_features"] = self.handwritten_text_features()
        return out
