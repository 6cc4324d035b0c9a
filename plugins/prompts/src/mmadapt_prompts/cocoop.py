"""CoCoOp (Zhou et al., CVPR 2022): a meta-net turns each image into a bias on every context token."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from mmadapt import Backbone, Task, new_context
from torch import nn

from .base import PromptAdapter


class Cocoop(PromptAdapter):
    """Conditional Context Optimization.

    Meta-net ``Linear(vis_dim, vis_dim // 16) - ReLU - Linear(vis_dim // 16, text_width)`` on the
    normalised image feature; its output is added to every context token. CoCoOp's reference code
    loops over the images of a batch; here the ``B x n_classes`` prompts of a batch go through the
    text encoder in one call (same features, one large batched pass).
    """

    paper = "Zhou et al., Conditional Prompt Learning for Vision-Language Models, CVPR 2022"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        vis_dim, hidden = backbone.embed_dim, backbone.embed_dim // 16
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(vis_dim, hidden)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden, backbone.text.width)),
                ]
            )
        ).to(self.prompt.ctx.device)

    def initial_context(self) -> torch.Tensor:
        """Words (``init``, "a photo of a" by default), else N(0, 0.02); always shared by the classes."""
        return new_context(self.backbone, self.config.n_ctx, self.config.init)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``prompt``: the context; ``meta_net``: the image-to-bias network."""
        return {"prompt": [self.prompt.ctx], "meta_net": list(self.meta_net.parameters())}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of each image against prompts shifted by the image's meta-net bias."""
        image = self.image_features(batch)
        bias = self.meta_net(image.to(self.prompt.ctx.dtype))
        text = self.encode_prompts(self.prompt(bias))  # (B, n_classes, embed_dim)
        logits = self.backbone.logit_scale * torch.einsum("bd,bcd->bc", image, text.to(image.dtype))
        return self.outputs(logits, image, text)
