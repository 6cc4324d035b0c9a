"""CoOp as its reference code trains it: the naive path our speed-ups are timed and tested against.

KaiyangZhou/CoOp (``trainers/coop.py``) runs, every step, the image encoder on the batch and the
text encoder over all ``context_length`` (77) positions of every class's prompt. This module does
exactly that with the ``end`` layout and nothing cached or cut, in the backbone's own precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmadapt import Backbone, prompt_name
from torch import nn


class ReferenceCoop(nn.Module):
    """CoOp's ``CustomCLIP`` with a shared context: full-length prompts, images encoded in ``forward``."""

    def __init__(self, backbone: Backbone, classnames: list[str], ctx: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.ctx = nn.Parameter(ctx.detach().clone())
        n_ctx = ctx.shape[0]
        placeholder = " ".join(["X"] * n_ctx)
        ids = backbone.text.tokenize([f"{placeholder} {prompt_name(name)}." for name in classnames])
        with torch.no_grad():
            embeddings = backbone.text.token_embedding(ids)
        self.register_buffer("prefix", embeddings[:, :1].clone(), persistent=False)
        self.register_buffer("suffix", embeddings[:, 1 + n_ctx :].clone(), persistent=False)
        self.register_buffer("eot", backbone.text.eot_index(ids), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of preprocessed images."""
        image = F.normalize(self.backbone.encode_image(pixels), dim=-1)
        ctx = self.ctx.unsqueeze(0).expand(self.prefix.shape[0], -1, -1)
        prompts = torch.cat([self.prefix, ctx, self.suffix], dim=1)
        text = F.normalize(self.backbone.text.encode_embeddings(prompts, self.eot), dim=-1)
        return self.backbone.logit_scale * image @ text.t()
