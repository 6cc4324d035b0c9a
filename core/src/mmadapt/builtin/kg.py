"""KgCoOp's objective (Yao et al., CVPR 2023): cross-entropy plus a pull toward hand-written prompts.

loss = CE(logits, label) + weight * (1 - mean_c cos(t_c, t_c^hand)), where ``t_c`` is the learned
text feature of class ``c`` and ``t_c^hand`` the feature of its hand-written prompt ("a photo of a
{c}."). The regulariser keeps learned prompts near the general knowledge of the hand-written ones,
which is what holds up accuracy on unseen classes. KgCoOp uses weight 8.0 and the cosine form of
its public code (for unit vectors the paper's squared L2 distance is twice this one).

The adapter's side of the contract: a boolean attribute ``report_handwritten``, False by default so
nothing else pays for the hand-written prompts' text pass. This objective sets it to True; from then
on the adapter's training outputs carry ``text_features`` (normalised, ``(n_classes, D)``, or
``(B, n_classes, D)`` for image-conditioned prompts) and ``handwritten_text_features`` (normalised,
``(n_classes, D)``, e.g. from :class:`mmadapt.HandwrittenTextFeatures`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from mmadapt.errors import UserError

from .config import KgRegularizerConfig


def kg_distance(text_features: torch.Tensor, handwritten_text_features: torch.Tensor) -> torch.Tensor:
    """``1 - mean cos`` between learned and hand-written text features, in fp32."""
    similarity = F.cosine_similarity(text_features.float(), handwritten_text_features.float(), dim=-1)
    return 1.0 - similarity.mean()


#: ``objective(outputs, batch) -> (loss, named terms)``, what an objective factory returns.
Objective = Callable[[dict[str, torch.Tensor], dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def build_kg_regularizer(config: KgRegularizerConfig, adapter: Any) -> Objective:
    """The KgCoOp objective for an adapter that reports ``text_features`` and ``handwritten_text_features``."""
    weight = config.weight
    if not isinstance(getattr(adapter, "report_handwritten", None), bool):
        raise UserError(
            f"objective kg-regularizer needs an adapter with learned text features and hand-written targets "
            f"(a report_handwritten attribute, e.g. coop, cocoop, mvlpt, latent-prompt); got {type(adapter).__name__}"
        )
    adapter.report_handwritten = True

    def kg_regularizer(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        cross_entropy = F.cross_entropy(outputs["logits"].float(), batch["label"])
        distance = kg_distance(outputs["text_features"], outputs["handwritten_text_features"])
        return cross_entropy + weight * distance, {"cross_entropy": cross_entropy, "kg_distance": distance}

    return kg_regularizer
