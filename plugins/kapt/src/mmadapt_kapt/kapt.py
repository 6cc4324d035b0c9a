"""KAPT (Kan et al., ICCV 2023) as mmadapt's documented reading (docs/methods/kapt.md).

logit_c = s * [beta * cos(f, t^d_c) + (1 - beta) * cos(f, t^c_c)], where t^d_c is the frozen feature
of the discrete prompt (the class name and its keywords), t^c_c the feature of the continuous prompt
(a learned context plus a bias per class from its description feature), and f the image feature
blended with the adaptation head's. Both prompt kinds depend on the class, not the image, so the
text encoder runs once per training step for all classes, and once per evaluation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import (
    Adapter,
    Backbone,
    HandwrittenTextFeatures,
    PromptLearner,
    Task,
    UserError,
    new_context,
    task_keywords,
)
from torch import nn

from .config import KaptConfig
from .discrete import discrete_prompts
from .head import AdaptationHead


def knowledge_mlp(backbone: Backbone) -> nn.Sequential:
    """D -> D/16 -> text width, ReLU between; the output layer starts at zero, so the bias starts at zero."""
    hidden = max(1, backbone.embed_dim // 16)
    mlp = nn.Sequential(nn.Linear(backbone.embed_dim, hidden), nn.ReLU(), nn.Linear(hidden, backbone.text.width))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class Kapt(Adapter):
    """Knowledge-aware prompt tuning: discrete and continuous knowledge prompts and an adaptation head.

    Every class needs a description (``Task.knowledge``, or the recipe's ``data.knowledge_file``);
    new classes at test time need only theirs (``set_task``).
    """

    paper = "Kan et al., Knowledge-Aware Prompt Tuning for Generalizable Vision-Language Models, ICCV 2023"

    report_handwritten = False  # kg-regularizer switches it on

    def __init__(self, config: KaptConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        _check_towers(backbone, config)
        # Without the head the image side is CLIP's frozen feature, which the engine may cache.
        self.frozen_image_features = not config.head
        device = next(backbone.parameters()).device
        self.prompt = PromptLearner(backbone, task.classnames, new_context(backbone, config.n_ctx, config.init))
        self.bias = knowledge_mlp(backbone).to(device) if config.knowledge_bias else None
        self.head = AdaptationHead(backbone, config.head_proj == "learned") if config.head else None
        self.handwritten = HandwrittenTextFeatures()
        for name in ("knowledge_features", "discrete_features"):
            self.register_buffer(name, None, persistent=False)
        self.discrete_texts: list[str] = []
        self._set_knowledge(task)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``prompt`` (the context), ``knowledge`` (the bias MLP) and ``head`` (query and projection)."""
        groups = {"prompt": [self.prompt.ctx]}
        if self.bias is not None:
            groups["knowledge"] = list(self.bias.parameters())
        if self.head is not None:
            groups["head"] = [p for p in self.head.parameters() if p.requires_grad]
        return groups

    def set_task(self, task: Task) -> None:
        """Switch to other classes (base-to-novel): their prompts come from their own descriptions."""
        self.prompt.set_classnames(self.backbone, task.classnames)
        self.task = task
        self._set_knowledge(task)
        self.clear_eval_cache()

    def _set_knowledge(self, task: Task) -> None:
        """Encode, once and frozen, every class's description and discrete prompt."""
        knowledge = task.knowledge or {}
        missing = [name for name in task.classnames if not knowledge.get(name)]
        if missing:
            raise UserError(
                f"adapter kapt needs a description of every class; {task.name or 'the dataset'} has none for "
                f"{', '.join(missing)}; give them in a file with data.knowledge_file"
            )
        backbone = self.backbone
        device = self.prompt.ctx.device
        with torch.no_grad():
            ids = backbone.text.tokenize([knowledge[name] for name in task.classnames]).to(device)
            self.knowledge_features = F.normalize(backbone.encode_text(ids).float(), dim=-1)
            keywords = task.keywords if task.keywords is not None else task_keywords(task)
            config = self.config
            self.discrete_texts = discrete_prompts(
                backbone, task.classnames, keywords, config.keywords, config.template, config.template_without_keywords
            )
            ids = backbone.text.tokenize(self.discrete_texts).to(device)
            self.discrete_features = F.normalize(backbone.encode_text(ids).float(), dim=-1)

    def class_bias(self) -> torch.Tensor | None:
        """The continuous prompt's bias per class ``(n_classes, text_width)``, None when switched off."""
        if self.bias is None:
            return None
        return self.bias(self.knowledge_features.to(self.prompt.ctx.dtype))

    def text_features(self) -> torch.Tensor:
        """Normalised features ``(n_classes, embed_dim)`` of the continuous prompts."""
        context = self.prompt.ctx
        bias = self.class_bias()
        if bias is not None:
            context = context + bias[:, None, :]
        # Without the bias the context is shared, so the prompts' common start runs once.
        return self.prompt.encode_context(self.backbone, context)

    def image_feature(self, batch: dict[str, Any]) -> torch.Tensor:
        """Normalised image features ``(B, embed_dim)``: CLIP's, blended with the head's by ``alpha``."""
        if self.head is None:
            return self.image_features(batch)
        image = self.backbone.image
        with torch.no_grad():
            x = image.run(image.embed(batch["image"])).tokens
            clip = F.normalize(image.head(x), dim=-1)
            patches = image.final_norm(x)[:, image.num_prefix_tokens :]
        head = F.normalize(self.head(patches, image.projection), dim=-1)
        alpha = self.config.alpha
        return F.normalize((1 - alpha) * clip.to(head.dtype) + alpha * head, dim=-1)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits: scaled cosines to the discrete and continuous prompts, weighed by ``beta``."""
        image = self.image_feature(batch)
        text = self.cached_in_eval("text_features", self.text_features)
        beta = self.config.beta if self.config.discrete else 0.0
        similarity = (1 - beta) * image @ text.to(image.dtype).t()
        if beta:
            similarity = similarity + beta * image @ self.discrete_features.to(image.dtype).t()
        out = {"logits": self.backbone.logit_scale * similarity, "features": image, "text_features": text}
        if self.training and self.report_handwritten:
            out["handwritten_text_features"] = self.kg_targets()
        return out

    def kg_targets(self) -> torch.Tensor:
        """kg-regularizer's frozen targets: the dataset's zero-shot templates or the discrete prompts."""
        if self.config.kg_target == "discrete":
            return self.discrete_features
        return self.handwritten(self.backbone, self.task.classnames, self.task.templates)


def _check_towers(backbone: Backbone, config: KaptConfig) -> None:
    """A clear error when the backbone lacks the text tower, or the ViT image tower the head reads."""
    backbone.require_token_text_tower(
        "adapter.name=kapt builds knowledge prompts for a text tower", "use a CLIP backbone"
    )
    if config.head:
        backbone.require_token_image_tower(
            "adapter.head=true pools the patch tokens of a ViT image tower", "set adapter.head=false"
        )
