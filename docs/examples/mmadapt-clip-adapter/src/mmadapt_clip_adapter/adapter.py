"""The ``clip-adapter`` adapter: a residual bottleneck MLP on frozen image features (CLIP-Adapter).

CLIP-Adapter (Gao et al., "CLIP-Adapter: Better Vision-Language Models with Feature Adapters",
IJCV 2024, arXiv:2110.04544) keeps CLIP frozen and learns a small MLP on the image feature ``f``::

    f' = alpha * mlp(f) + (1 - alpha) * f
    logits = logit_scale * cos(f', t_c)     # t_c: zero-shot text feature of class c

``adapt new-plugin`` starts every plugin from this adapter; replace it with your method. This module
imports torch; plugin.py names it by reference, so mmadapt imports it only when a recipe builds the adapter.
"""

from __future__ import annotations

from typing import Any

import torch
from mmadapt import Adapter, Backbone, Task, zeroshot_classifier
from torch import nn

from .config import ClipAdapterConfig


class ClipAdapter(Adapter):
    """A residual bottleneck MLP on the image feature; classes are zero-shot text features."""

    #: forward() sees images only through the frozen image encoder, so the engine may compute the
    #: features once per split instead of every epoch (exact, and much faster).
    frozen_image_features = True

    def __init__(self, config: ClipAdapterConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        width = backbone.embed_dim  # never hard-code 512: backbones differ
        hidden = max(1, width // config.reduction)
        # As in the paper's code: no biases, and a ReLU after both layers.
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, width, bias=False),
            nn.ReLU(),
        )
        # Not persistent: rebuilt from text, so checkpoints hold only the MLP.
        self.register_buffer("class_embeddings", torch.empty(0), persistent=False)
        self.set_task(task)

    def set_task(self, task: Task) -> None:
        """Build the classifier from the class names, so unseen classes work too (base-to-novel)."""
        self.task = task
        with torch.no_grad():
            self.class_embeddings = zeroshot_classifier(
                self.backbone, task.classnames, self.config.templates or task.templates
            )

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """One group, ``mlp``: a recipe sets its learning rate with ``train.param_groups.mlp.lr``."""
        return {"mlp": list(self.mlp.parameters())}

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Blend the adapted image feature into the frozen one and classify by cosine similarity."""
        features = self.image_features(batch, normalize=False)
        alpha = self.config.alpha
        blended = alpha * self.mlp(features) + (1 - alpha) * features
        blended = blended / blended.norm(dim=-1, keepdim=True)
        logits = self.backbone.logit_scale * blended @ self.class_embeddings.to(blended.dtype).t()
        return {"logits": logits, "features": blended}
