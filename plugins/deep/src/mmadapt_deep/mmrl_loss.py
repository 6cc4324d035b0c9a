"""MMRL's loss (Guo et al., CVPR 2025): both logits learn the labels, both towers stay near CLIP.

loss = class_weight x CE(class-token logits) + (1 - class_weight) x CE(representation logits)
       + weight x [(1 - mean_i cos(v_i, v_i^clip)) + (1 - mean_c cos(t_c, t_c^clip))]

``v_i`` is image ``i``'s class-token feature with the representation tokens in the tower and
``v_i^clip`` CLIP's own feature of the same image; ``t_c`` is class ``c``'s prompt feature with the
text representation tokens and ``t_c^clip`` CLIP's feature of the same hand-written prompt. MMRL's
code uses class_weight 0.7 and weight 1.0, with a weight per dataset in its recipes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import UserError

from .config import MmrlLossConfig

#: ``objective(outputs, batch) -> (loss, named terms)``, what an objective factory returns.
Objective = Callable[[dict[str, torch.Tensor], dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def cosine_distance(features: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos`` between matching rows, in fp32."""
    return 1.0 - F.cosine_similarity(features.float(), frozen.float(), dim=-1).mean()


def build_mmrl_loss(config: MmrlLossConfig, adapter: Any) -> Objective:
    """MMRL's objective for an adapter that reports CLIP's own features next to its own (the ``mmrl`` adapter)."""
    if not isinstance(getattr(adapter, "report_frozen", None), bool):
        raise UserError(
            f"objective mmrl needs the mmrl adapter (class-token and representation logits, CLIP's own features); "
            f"got {type(adapter).__name__}"
        )
    adapter.report_frozen = True
    class_weight, weight = config.class_weight, config.weight

    def mmrl_loss(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        label = batch["label"]
        class_ce = F.cross_entropy(outputs["class_logits"].float(), label)
        representation_ce = F.cross_entropy(outputs["representation_logits"].float(), label)
        image_distance = cosine_distance(outputs["features"], outputs["frozen_image_features"])
        text_distance = cosine_distance(outputs["text_features"], outputs["frozen_text_features"])
        loss = (class_weight * class_ce + (1 - class_weight) * representation_ce
                + weight * (image_distance + text_distance))
        return loss, {"class_cross_entropy": class_ce, "representation_cross_entropy": representation_ce,
                      "image_distance": image_distance, "text_distance": text_distance}

    return mmrl_loss
