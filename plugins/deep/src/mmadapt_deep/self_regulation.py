"""PromptSRC's objective (Khattak et al., ICCV 2023): cross-entropy plus three pulls toward frozen CLIP.

loss = CE(logits, label)
       + text_weight  * L1(prompted text features,  frozen text features)
       + image_weight * L1(prompted image features, frozen image features)
       + logits_weight * T^2 * KL(softmax(zero_shot_logits / T) || softmax(logits / T))

As in PromptSRC's code (muzairkhattak/PromptSRC, ``trainers/promptsrc.py``): both L1 terms are means
over every element of L2-normalised features (``F.l1_loss``, reduction ``mean``); the frozen text
features are the prompt ensemble of many hand-written templates per class; the KL term sums over
the batch and the classes and divides by their product (``B x C``), with the zero-shot distribution as
the target (``F.kl_div(log_softmax(prompted), log_softmax(zero_shot), log_target=True)``); the code's
temperature is 1. Defaults: text 25, image 10, logits 1.

The adapter's side of the contract: a boolean attribute ``report_frozen``, False by default so
nothing else pays for the frozen passes. This objective sets it to True; from then on the adapter's
training outputs carry, besides ``logits`` ``(B, C)``: ``features`` (prompted image features,
normalised, ``(B, D)``), ``text_features`` (prompted, normalised, ``(C, D)``), ``frozen_features``
(frozen CLIP's image features of the same images, normalised, ``(B, D)``), ``frozen_text_features``
(normalised, ``(C, D)``) and ``frozen_logits`` (``(B, C)``, CLIP's zero-shot logits: frozen image
against frozen text features at the model's logit scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import UserError

from .config import PromptSRCObjectiveConfig

#: ``objective(outputs, batch) -> (loss, named terms)``, what an objective factory returns.
Objective = Callable[[dict[str, torch.Tensor], dict[str, Any]], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def self_regulation_terms(outputs: dict[str, torch.Tensor], temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """The three unweighted regularisers of PromptSRC, in fp32: ``text_l1``, ``image_l1``, ``logits_kl``."""
    text_l1 = F.l1_loss(outputs["text_features"].float(), outputs["frozen_text_features"].float())
    image_l1 = F.l1_loss(outputs["features"].float(), outputs["frozen_features"].float())
    logits = outputs["logits"].float()
    prompted = F.log_softmax(logits / temperature, dim=-1)
    zero_shot = F.log_softmax(outputs["frozen_logits"].float() / temperature, dim=-1)
    kl = F.kl_div(prompted, zero_shot, reduction="sum", log_target=True) * temperature**2 / logits.numel()
    return {"text_l1": text_l1, "image_l1": image_l1, "logits_kl": kl}


def build_promptsrc_objective(config: PromptSRCObjectiveConfig, adapter: Any) -> Objective:
    """PromptSRC's loss for an adapter that reports frozen features (``report_frozen``)."""
    if not isinstance(getattr(adapter, "report_frozen", None), bool):
        raise UserError(
            f"objective promptsrc needs an adapter that reports frozen CLIP features next to its prompted ones "
            f"(a report_frozen attribute, e.g. adapter.name: promptsrc or ivlp); got {type(adapter).__name__}"
        )
    adapter.report_frozen = True
    weights = {"text_l1": config.text_weight, "image_l1": config.image_weight, "logits_kl": config.logits_weight}

    def promptsrc(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        cross_entropy = F.cross_entropy(outputs["logits"].float(), batch["label"])
        terms = self_regulation_terms(outputs, config.temperature)
        loss = cross_entropy + sum(weights[name] * value for name, value in terms.items())
        return loss, {"cross_entropy": cross_entropy, **terms}

    return promptsrc
