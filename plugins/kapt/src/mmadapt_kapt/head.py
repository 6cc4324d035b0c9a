"""KAPT's adaptation head: attention pooling of the final patch tokens with a learned query, then a projection."""

from __future__ import annotations

import math

import torch
from mmadapt import Backbone, UserError
from torch import nn


class AdaptationHead(nn.Module):
    """h = softmax(Z q / sqrt(w))^T Z over the patch tokens Z, projected by W_h to the joint space.

    ``q`` starts at zero (mean pooling); ``W_h`` starts as CLIP's visual projection and is learned,
    or is CLIP's own frozen projection with ``learned=False``.
    """

    def __init__(self, backbone: Backbone, learned: bool = True) -> None:
        super().__init__()
        projection = backbone.image.projection
        if projection is None:
            raise UserError("adapter.head needs an image tower with a visual projection (a CLIP ViT); "
                            "set adapter.head: false for this backbone")
        self.query = nn.Parameter(torch.zeros(backbone.image.width, device=projection.device))
        if learned:
            self.projection = nn.Parameter(projection.detach().clone().float())
        else:
            self.projection = None

    def pool(self, patches: torch.Tensor) -> torch.Tensor:
        """Attention-pooled tokens ``(B, w)`` of patch tokens ``(B, N, w)``; the mean when the query is zero."""
        query = self.query.to(patches.dtype)
        weights = torch.softmax(patches @ query / math.sqrt(patches.shape[-1]), dim=-1)
        return (weights.unsqueeze(-1) * patches).sum(dim=1)

    def forward(self, patches: torch.Tensor, clip_projection: torch.Tensor) -> torch.Tensor:
        """Head features ``(B, D)`` (not normalised) of patch tokens ``(B, N, w)``; ``clip_projection`` serves
        a frozen head (the backbone is not a submodule of the head, so it is passed in)."""
        projection = self.projection if self.projection is not None else clip_projection
        return self.pool(patches) @ projection.to(patches.dtype)
