"""RAVE's enhancement step for ``adapt bench gpu``: CLIP-LIT's network on 512² images (64² tiny), batch 4
at most, its guidance and identity losses through the frozen image tower."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmadapt import Backbone, Task, TrainingStep


def training_steps(backbone: Backbone, batch_size: int, tiny: bool) -> dict[str, TrainingStep]:
    """``{"rave": step}`` on ``backbone``'s device."""
    from .adapter import RaveAdapter
    from .config import RaveConfig
    from .stages import rave_objective

    device = next(backbone.parameters()).device
    adapter = RaveAdapter(RaveConfig(network="clip-lit-net"), backbone, Task([], kind="image-to-image")).to(device)
    adapter.set_residual(F.normalize(torch.randn(backbone.embed_dim), dim=0), torch.tensor(0.3))
    side, images = (64, min(batch_size, 4)) if tiny else (512, min(batch_size, 4))
    objective = rave_objective(adapter, guidance_weight=6 * 320, identity_weight=0.9 * 25)
    batch = {"image": torch.rand(images, 3, side, side, device=device)}

    def rave_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return objective(model(batch), batch)[0]

    return {"rave": TrainingStep(adapter, batch, rave_loss, images)}
