"""``ept-visual``: EPT as shallow visual prompts on a ViT image tower (open_clip or timm).

Δ (N patch tokens x width) is added to the patch tokens entering the first block (prefix tokens get
none) and P (m x width) is inserted after the prefix tokens, in one run of the ViT image tower
(``TokenImageTower.run``). Classes come from the frozen zero-shot text head, or a linear head.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Adapter, Backbone, Task, zeroshot_classifier
from torch import nn

from .parts import EptParts


class EptVisual(Adapter):
    """Image features with EPT's visual prompt and patch offsets; logits from a zero-shot or linear head."""

    paper = "Lan et al., Efficient Prompt Tuning by Multi-Space Projection and Prompt Fusion, AAAI 2025"

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        image = backbone.require_token_image_tower(
            "adapter.name=ept-visual prompts a ViT image tower", "use adapter.name=ept on the text tower"
        )
        self.n_patches = image.patch_count(backbone.preprocessing.size)
        width = backbone.image.width
        self.ctx = nn.Parameter(torch.empty(config.n_ctx, width).normal_(std=0.02))
        self.parts = EptParts(config, self.n_patches, width)
        self.head_kind = config.head or ("zeroshot" if backbone.text is not None else "linear")
        if self.head_kind == "zeroshot":
            backbone.require_text_tower("adapter.head=zeroshot needs a text tower", "use adapter.head=linear")
            self.register_buffer("text_head", None, persistent=False)
            self._set_text_head(task)
        else:
            self.head = nn.Linear(backbone.embed_dim, task.n_classes)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _set_text_head(self, task: Task) -> None:
        self.text_head = zeroshot_classifier(self.backbone, task.classnames, task.templates)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``prompt``: P_s, U, V, W_g, b_g; ``low_rank``: A, B; ``head``: the linear head, if any."""
        groups = {"prompt": [self.ctx, *self.parts.prompt_parameters()], "low_rank": self.parts.low_rank_parameters()}
        groups["head"] = list(self.head.parameters()) if self.head_kind == "linear" else []
        return groups

    def parameter_counts(self) -> dict[str, int]:
        """``trainable`` and ``total``, the per-part counts and the decomposed budget (prompt + low-rank)."""
        counts = {**super().parameter_counts(), **self.parts.counts(self.ctx.numel())}
        counts["head"] = sum(p.numel() for p in self.head.parameters()) if self.head_kind == "linear" else 0
        return counts

    def set_task(self, task: Task) -> None:
        """Another class list through the zero-shot text head; a linear head cannot change classes."""
        if self.head_kind != "zeroshot":
            super().set_task(task)
        self._set_text_head(task)
        self.task = task
        self.clear_eval_cache()

    def image_prompt_and_offsets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """P ``(m, width)`` and Δ ``(N, width)`` of the current parameters."""
        offset = self.parts.offset()
        return self.parts.prompt(self.ctx, offset), offset

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of the batch's preprocessed images with the prompt and offsets in the image tower."""
        prompt, offset = self.image_prompt_and_offsets()
        image = self.backbone.image
        tokens = image.embed(batch["image"])
        start = image.num_prefix_tokens
        # VPT-shallow: the prompt after the class token, the offsets on the patch tokens, before block 0.
        run = image.run(
            tokens, insert={0: prompt.unsqueeze(0)}, insert_at=start, replace={0: (start, tokens[:, start:] + offset)}
        )
        features = F.normalize(image.head(run.tokens), dim=-1)
        if self.head_kind == "linear":
            return {"logits": self.head(features), "features": features}
        logits = self.backbone.logit_scale * features @ self.text_head.to(features.dtype).t()
        return {"logits": logits, "features": features}
