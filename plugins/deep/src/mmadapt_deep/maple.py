"""MaPLe, multi-modal prompt learning (Khattak et al., CVPR 2023): image tokens coupled to the text tokens."""

from __future__ import annotations

import torch
from mmadapt import Backbone, Task
from torch import nn

from .config import MapleConfig
from .deep import DeepPromptAdapter
from .ivlp import normal_tokens


class Maple(DeepPromptAdapter):
    """n text tokens at each of the first J layers; layer k's image tokens are ``F_k(text tokens of layer k)``.

    ``F_k`` is a ``Linear(text width -> image width)`` per layer, the coupling function, so the image
    tokens have no parameters of their own and every gradient they get reaches the text tokens through
    ``F_k``. Layer 0's text tokens start from the first n tokens of ``init`` ("a photo" of "a photo of a";
    "of a" stays as words before the class name); deeper ones from N(0, 0.02). Parameters:
    ``J x (n x text width + text width x image width + image width)``: 3,555,072 on ViT-B/16 with n = 2,
    J = 9.
    """

    def __init__(self, config: MapleConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task, n_text=config.n_ctx)
        depth, device = config.depth, self.prompt.ctx.device
        self.text_deep = normal_tokens(max(depth - 1, 0), config.n_ctx, backbone.text.width, device)
        self.coupling = nn.ModuleList(
            [nn.Linear(backbone.text.width, backbone.image.width, device=device) for _ in range(depth)]
        )

    def text_prompts(self) -> list[torch.Tensor]:
        """Layer 0's learned context, then each deeper layer's text tokens."""
        return [self.prompt.ctx, *self.text_deep] if self.config.depth else []

    def visual_prompts(self) -> list[torch.Tensor]:
        """``F_k`` of each layer's text tokens."""
        return [couple(tokens) for couple, tokens in zip(self.coupling, self.text_prompts())]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``text``: the context and the deeper text tokens; ``coupling``: the weights and biases of every F_k."""
        groups = {"text": [p for p in (self.prompt.ctx, *self.text_deep) if p.requires_grad],
                  "coupling": list(self.coupling.parameters())}
        return {name: params for name, params in groups.items() if params}
