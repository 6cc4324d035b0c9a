"""``seq-prompt``: one key/value prompt shared by every task, fine-tuned task after task (a baseline).

The image runs through the whole frozen ViT with the prompt as prefix in the first L_p blocks; its
class token (final norm, L2 norm) feeds a shared linear head. Old classes keep their head rows
(their logits are masked in the loss while later tasks train), but the shared prompt moves on, so
their features drift: the forgetting MULTI-LANE's separate lanes avoid.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Backbone, Task
from torch import nn

from .incremental import IncrementalAdapter, linear_head
from .lanes import check_prompt_layers


class SeqPrompt(IncrementalAdapter):
    """A prefix-prompted ViT with one prompt for all tasks; logits of the served tasks' classes."""

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        check_prompt_layers(backbone, config.prompt_layers, "adapter seq-prompt")
        width = backbone.image.width
        self.prompted_layers = config.prompt_layers if config.prompt_length else 0
        if self.prompted_layers:
            prompts = torch.empty(self.prompted_layers * 2 * config.prompt_length, width)
            nn.init.orthogonal_(prompts)
            self.prompts = nn.Parameter(prompts.view(self.prompted_layers, 2, config.prompt_length, width))
        self.head = linear_head(width, task.n_classes)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``prompt``: the shared key/value prompts; ``head``: the shared linear head."""
        return {"prompt": [self.prompts] if self.prompted_layers else [], "head": list(self.head.parameters())}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of every served task's classes (0 for the others)."""
        with torch.no_grad():
            tokens = self.backbone.image.embed(batch["image"])
        for index, block in enumerate(self.backbone.image.blocks):
            prefix = tuple(self.prompts[index, :, None]) if index < self.prompted_layers else None
            tokens = block(tokens, prefix)
        token = self.backbone.image.final_norm(tokens[:, :1])[:, 0]
        if self.config.prehead_norm:
            token = F.normalize(token, dim=-1)
        logits = self.head(token)
        return {"logits": torch.where(self.seen_mask(), logits, torch.zeros_like(logits))}
