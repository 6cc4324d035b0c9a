"""KgCoOp's objective (Yao et al., CVPR 2023): cross-entropy plus a pull toward hand-written prompts.

loss = CE(logits, label) + weight * (1 - mean_c cos(t_c, t_c^hand)), where ``t_c`` is the learned
text feature of class ``c`` and ``t_c^hand`` the feature of its hand-written prompt ("a photo of a
{c}."). The regulariser keeps learned prompts near the general knowledge of the hand-written ones,
which is what holds up accuracy on unseen classes. KgCoOp uses weight 8.0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import UserError

Objective = Callable[[dict[str, torch.Tensor], dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def build_kg_regularizer(config: Any, adapter: Any) -> Objective:
    """The KgCoOp objective for an adapter that reports ``text_features`` and ``handwritten_text_features``."""
    if not hasattr(adapter, "report_handwritten"):
        raise UserError(
            f"objective kg-regularizer needs an adapter with learned text features and hand-written targets "
            f"(coop, cocoop, mvlpt, latent-prompt); got {type(adapter).__name__}"
        )
    adapter.report_handwritten = True

    def kg_regularizer(outputs: dict[str, torch.Tensor], batch: dict[str, Any]):
        cross_entropy = F.cross_entropy(outputs["logits"].float(), batch["label"])
        # Text features are (n_classes, D), or (B, n_classes, D) for image-conditioned prompts.
        similarity = F.cosine_similarity(
            outputs["text_features"].float(), outputs["handwritten_text_features"].float(), dim=-1
        )
        distance = 1.0 - similarity.mean()
        return cross_entropy + config.weight * distance, {"cross_entropy": cross_entropy, "kg_distance": distance}

    return kg_regularizer
