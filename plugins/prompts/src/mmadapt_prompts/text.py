"""Hand-written prompt features: KgCoOp's targets and the zero-shot classes of latent prompts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmadapt import Backbone

from .prompt import prompt_name


def handwritten_features(backbone: Backbone, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """Normalised class features ``(n_classes, embed_dim)`` of hand-written prompts, in fp32.

    Each template is filled with each class name (``_`` read as a space); with several templates the
    normalised features are averaged and normalised again (CLIP's prompt ensembling).
    """
    texts = [template.format(prompt_name(name)) for name in classnames for template in templates]
    with torch.no_grad():
        features = backbone.encode_text(backbone.tokenize(texts), normalize=True).float()
    features = features.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(features, dim=-1)
