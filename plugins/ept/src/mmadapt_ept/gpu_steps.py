"""EPT's training step for ``adapt bench gpu``: the text prompt (8 tokens, fusion, projection) on 100 classes.

The image tower runs in the step, as in training from images (the feature cache skips it when it can).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Backbone, Task, TrainingStep


def training_steps(backbone: Backbone, batch_size: int, tiny: bool) -> dict[str, TrainingStep]:
    """``{"ept": step}`` on ``backbone``'s device (4 classes at tiny sizes)."""
    from .config import EptConfig
    from .text import Ept

    classes = 4 if tiny else 100
    device = next(backbone.parameters()).device
    task = Task([f"class {i}" for i in range(classes)])
    adapter = Ept(EptConfig(n_ctx=8, truncate=True), backbone, task).to(device)
    size = backbone.preprocessing.size
    batch = {"image": torch.randn(batch_size, 3, size, size, device=device),
             "label": torch.randint(0, classes, (batch_size,), device=device)}
    return {"ept": TrainingStep(adapter, batch, _cross_entropy, batch_size)}


def _cross_entropy(model: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    return F.cross_entropy(model(batch)["logits"].float(), batch["label"])
