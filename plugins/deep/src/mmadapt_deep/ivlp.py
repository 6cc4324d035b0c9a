"""IVLP, independent vision-language prompts (the deep baseline of Khattak et al., MaPLe, CVPR 2023)."""

from __future__ import annotations

import torch
from mmadapt import Backbone, Task
from torch import nn

from .config import IvlpConfig
from .deep import DeepPromptAdapter


def normal_tokens(layers: int, count: int, width: int, device: torch.device) -> nn.ParameterList:
    """``layers`` parameters ``(count, width)`` drawn from N(0, 0.02), the deep-prompt papers' initialisation."""
    return nn.ParameterList(
        [nn.Parameter(torch.empty(count, width, device=device).normal_(std=0.02)) for _ in range(layers)]
    )


class Ivlp(DeepPromptAdapter):
    """n_t text tokens and n_v image tokens of their own at each of the first J layers, trained independently.

    Layer 0's text tokens start from ``init``'s words; the deeper text tokens and all image tokens from
    N(0, 0.02). Parameters: ``J x (n_t x text width + n_v x image width)``. PromptSRC trains these prompts
    with its regularisers (it reads :meth:`DeepPromptAdapter.clip_image_features` and the ``report_frozen``
    outputs).
    """

    def __init__(self, config: IvlpConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task, n_text=config.n_text)
        depth, device = config.depth, self.prompt.ctx.device
        n_text = self.prompt.n_ctx
        self.text_deep = normal_tokens(max(depth - 1, 0) if n_text else 0, n_text, backbone.text.width, device)
        n_visual = config.n_visual if depth else 0
        self.visual = normal_tokens(depth if n_visual else 0, n_visual, backbone.image.width, device)

    def text_prompts(self) -> list[torch.Tensor]:
        """Layer 0's learned context, then each deeper layer's own text tokens."""
        return [self.prompt.ctx, *self.text_deep] if self.prompt.n_ctx and self.config.depth else []

    def visual_prompts(self) -> list[torch.Tensor]:
        """Each layer's own image tokens."""
        return list(self.visual)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``text``: the context and the deeper text tokens; ``visual``: the image tokens."""
        groups = {"text": [p for p in (self.prompt.ctx, *self.text_deep) if p.requires_grad and p.numel()],
                  "visual": list(self.visual)}
        return {name: params for name, params in groups.items() if params}
