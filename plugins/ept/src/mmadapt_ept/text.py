"""``ept``: EPT on the CLIP text tower. P (fused, projected) takes the place of CoOp's context and the
offset Δ is added to every position of the assembled prompts before the positional embedding."""

from __future__ import annotations

from typing import Any

import torch
from mmadapt import Adapter, Backbone, HandwrittenTextFeatures, PromptLearner, Task, UserError, new_context

from .parts import EptParts

#: m without ``init`` or ``n_ctx``: the length of "a photo of a", the budget table's text row.
DEFAULT_N_CTX = 4


class Ept(Adapter):
    """Logits = logit_scale * cos(image feature, text feature of [SOS][P][class][.][EOT] + Δ).

    P is shared by all classes and independent of the image, so the parts run once per training step
    and the text features once per evaluation. Δ covers the first s positions: ``context_length``,
    or with ``truncate`` and fusion on the training classes' longest prompt (every row of Δ feeds
    the fused prompt, so s is part of the model, kept in the checkpoint as ``offset_length``;
    longer prompts of other classes get no offset after s). With ``truncate`` on a causal tower the
    sequence is cut after the current classes' longest end token; with fusion off that is exact.
    """

    paper = "Lan et al., Efficient Prompt Tuning by Multi-Space Projection and Prompt Fusion, AAAI 2025"

    frozen_image_features = True
    #: Put ``handwritten_text_features`` in the training outputs (``kg-regularizer`` switches it on).
    report_handwritten: bool = False

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        backbone.require_token_text_tower(
            "adapter.name=ept learns text prompts", "use adapter.name=ept-visual for an image tower"
        )
        n_ctx = config.n_ctx if config.n_ctx is not None or config.init else DEFAULT_N_CTX
        context = new_context(backbone, n_ctx, config.init)
        # Full-length rows: the adapter itself decides how many positions it uses (see `positions`).
        self.prompt = PromptLearner(backbone, task.classnames, context, config.class_token_position, truncate=False)
        self.cut = bool(config.truncate and backbone.text.causal)
        length = self._longest() if self.cut and config.fusion else backbone.text.context_length
        self.parts = EptParts(config, length, backbone.text.width)
        self.register_buffer("offset_length", torch.tensor(length))
        self.handwritten = HandwrittenTextFeatures()

    def _longest(self) -> int:
        return int(self.prompt.eot.max()) + 1

    @property
    def positions(self) -> int:
        """Text positions encoded: up to the longest end token when cutting, else ``context_length``."""
        return self._longest() if self.cut else self.backbone.text.context_length

    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """``prompt``: P_s, U, V, W_g, b_g; ``low_rank``: A, B (separate learning rates, as in DePT)."""
        return {
            "prompt": [self.prompt.ctx, *self.parts.prompt_parameters()],
            "low_rank": self.parts.low_rank_parameters(),
        }

    def parameter_counts(self) -> dict[str, int]:
        """``trainable`` and ``total``, the per-part counts and the decomposed budget (prompt + low-rank)."""
        return {**super().parameter_counts(), **self.parts.counts(self.prompt.ctx.numel())}

    def set_task(self, task: Task) -> None:
        """Rebuild the class rows for another class list (base-to-novel evaluation); s stays as trained."""
        self.prompt.set_classnames(self.backbone, task.classnames)
        self.task = task
        self.clear_eval_cache()

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint, refusing one whose offset length s differs from this model's."""
        saved = state.get("offset_length")
        if saved is not None and int(saved) != self.parts.offset.length:
            raise UserError(
                f"the checkpoint's EPT offset covers s={int(saved)} text positions, this adapter's s="
                f"{self.parts.offset.length}; with fusion on s is part of the model: use the adapter.truncate "
                "setting the checkpoint was trained with"
            )
        super().load_trainable_state_dict(state)

    def reconstructed_prompt(self) -> torch.Tensor:
        """P, ``(m, width)``: P_s fused with Δ and projected, as the switches say."""
        return self.parts.prompt(self.prompt.ctx, self.parts.offset())

    def text_features(self) -> torch.Tensor:
        """Normalised text features ``(n_classes, embed_dim)`` of the current prompts."""
        offset = self.parts.offset()
        prompt = self.parts.prompt(self.prompt.ctx, offset)
        # Positions after s get no offset; the start token and P, the same in every prompt, run once.
        return self.prompt.encode_context(self.backbone, prompt, offset=offset, positions=self.positions)

    def handwritten_text_features(self) -> torch.Tensor:
        """Normalised features of the dataset's hand-written prompts of the current classes (KgCoOp's targets)."""
        return self.handwritten(self.backbone, self.task.classnames, self.task.templates)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of the batch's images against the prompts' text features (cached in eval)."""
        image = self.image_features(batch)
        text = self.cached_in_eval("text_features", self.text_features)
        logits = self.backbone.logit_scale * image @ text.to(image.dtype).t()
        out = {"logits": logits, "features": image, "text_features": text}
        if self.training and self.report_handwritten:
            out["handwritten_text_features"] = self.handwritten_text_features()
        return out
