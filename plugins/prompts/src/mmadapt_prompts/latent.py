"""Latent class prompts (ConES-style; Yi et al., arXiv 2305.18993): class vectors in the joint space.

ConES optimises concept embeddings directly instead of going through the text encoder. Here each
class is a learned vector ``w_c`` in the image-text space, initialised from the normalised zero-shot
text feature of its hand-written prompts; logits = logit_scale * cos(f, w_c). The training step
never runs the text encoder, so with cached image features it is a cosine linear probe.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Adapter, Backbone, Task, zeroshot_classifier
from torch import nn


class LatentPrompt(Adapter):
    """Learned class vectors ``(n_classes, embed_dim)``; classes it was not trained on use zero-shot features."""

    paper = ("Yi et al., ConES: Concept Embedding Search for Parameter Efficient Tuning Large Vision Language Models,"
             " arXiv 2305.18993")

    frozen_image_features = True
    #: Put ``handwritten_text_features`` (the zero-shot vectors) in the training outputs (KgCoOp).
    report_handwritten: bool = False

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        # set_task builds the zero-shot vectors; zeroshot_classifier rejects a backbone without a text tower.
        self.trained_classnames = list(task.classnames)
        for name in ("zeroshot", "learned_index"):
            self.register_buffer(name, None, persistent=False)
        self.set_task(task)
        self.class_vectors = nn.Parameter(self.zeroshot.clone())

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``class_vectors``: one vector per training class."""
        return {"class_vectors": [self.class_vectors]}

    def set_task(self, task: Task) -> None:
        """Serve ``task``'s classes: learned vectors for the training classes (by name), zero-shot for the rest."""
        self.task = task
        templates = self.config.templates or task.templates
        self.zeroshot = zeroshot_classifier(self.backbone, task.classnames, templates)
        known = {name: i for i, name in reversed(list(enumerate(self.trained_classnames)))}
        self.learned_index = torch.tensor(
            [known.get(name, -1) for name in task.classnames], dtype=torch.long, device=self.zeroshot.device
        )
        self.clear_eval_cache()

    def handwritten_text_features(self) -> torch.Tensor:
        """Normalised zero-shot features of the current classes: where the class vectors started."""
        return self.zeroshot

    def class_features(self) -> torch.Tensor:
        """Normalised class vectors ``(n_classes, embed_dim)`` of the current classes."""
        index = self.learned_index
        vectors = self.class_vectors[index.clamp(min=0)]
        vectors = torch.where((index >= 0).unsqueeze(-1), vectors, self.zeroshot.to(vectors.dtype))
        return F.normalize(vectors, dim=-1)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of the batch's images against the learned (or zero-shot) class vectors."""
        image = self.image_features(batch)
        classes = self.class_features()
        logits = self.backbone.logit_scale * image @ classes.to(image.dtype).t()
        out = {"logits": logits, "features": image, "text_features": classes}
        if self.training and self.report_handwritten:
            out["handwritten_text_features"] = self.handwritten_text_features()
        return out
