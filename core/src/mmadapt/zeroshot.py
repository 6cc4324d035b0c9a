"""CLIP's zero-shot classifier: class embeddings from hand-written prompts, shared by adapters and plugins."""

from __future__ import annotations

import torch

from .backbone import Backbone


def prompt_texts(classnames: list[str], templates: list[str]) -> list[str]:
    """Every template filled with every class name (``_`` read as a space), class-major."""
    return [template.format(name.replace("_", " ")) for name in classnames for template in templates]


def zeroshot_classifier(backbone: Backbone, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """Normalised class embeddings (n_classes, embed_dim): the mean of normalised template features."""
    text = backbone.require_text_tower(
        "zero-shot classes are text embeddings of the class names", "use a CLIP backbone or a linear head"
    )
    device = next(backbone.parameters()).device
    tokens = text.tokenize(prompt_texts(classnames, templates)).to(device)
    features = backbone.encode_text(tokens, normalize=True).float()
    features = features.view(len(classnames), len(templates), -1).mean(dim=1)
    return features / features.norm(dim=-1, keepdim=True)


class ZeroShotClasses:
    """Mixin for an :class:`~mmadapt.Adapter` that classifies with the frozen zero-shot text features of its task.

    ``set_task`` fills the ``class_embeddings`` buffer (not saved in checkpoints: it follows from the
    backbone, the class names and the templates) from ``config.templates``, or the task's own templates
    when the config gives none. Call it at the end of ``__init__``.
    """

    def set_task(self, task) -> None:
        """Switch to ``task``'s classes: their prompt features become the classifier."""
        self.task = task
        with torch.no_grad():
            embeddings = zeroshot_classifier(self.backbone, task.classnames, self.config.templates or task.templates)
        self.register_buffer("class_embeddings", embeddings, persistent=False)
