"""What every deep-prompt adapter shares: text and image tokens at the first J layers of CLIP's two towers.

The text prompt of every class is ``[SOS][t_0][words][name].[EOT]``: ``t_0`` are the learned text tokens of
layer 0 (at first the first tokens of ``init``'s words), ``words`` the rest of ``init`` (MaPLe keeps "of a"
of "a photo of a"). Before text block ``k`` (1 .. J - 1) the positions of ``t_0`` get ``t_k``, the layer's
own tokens, with no positional embedding; the tokens are the same for every class, so the start token
and the context run once for all classes (``PromptLearner.encode_context(deep=...)``, exact on a causal
tower). On the image side the tokens ``v_k`` of layer ``k`` (0 .. J - 1) sit after the patch tokens,
after the positional embedding, and replace those of the layer before (``TokenTower.run(insert=...)``);
the image feature is the class token's as usual. A subclass says where the tokens come from
(:meth:`DeepPromptAdapter.text_prompts`, :meth:`DeepPromptAdapter.visual_prompts`).
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
    token_counts,
    word_context,
)


def check_depth(backbone: Backbone, depth: int) -> None:
    """A ``UserError`` naming ``adapter.depth`` when J exceeds either tower's number of blocks."""
    text, image = backbone.text, backbone.image
    deepest = min(text.depth, image.depth)
    if depth > deepest:
        raise UserError(
            f"adapter.depth={depth} prompts more layers than {backbone.name} has: its text tower has {text.depth} "
            f"blocks and its image tower {image.depth}; set adapter.depth to at most {deepest}"
        )


def split_init(backbone: Backbone, n_tokens: int, init: str | None) -> tuple[torch.Tensor, str]:
    """The first ``n_tokens`` token embeddings of ``init`` (the learned start) and the words after them.

    Without ``init`` the tokens are N(0, 0.02) draws and no words follow. The tokens must end on a word
    boundary of ``init``, so that the words left are text the tokenizer reads the same way.
    """
    width = backbone.text.width
    device = next(backbone.parameters()).device
    if init is None:
        return torch.empty(n_tokens, width, device=device).normal_(std=0.02), ""
    words = init.split()
    counts = token_counts(backbone, [" ".join(words[:k]) for k in range(len(words) + 1)]).tolist()
    if n_tokens not in counts:
        raise UserError(
            f"adapter.init={init!r} is {counts[-1]} tokens, {counts} after each word: the learned text tokens "
            f"({n_tokens}) must be a whole number of its first words; change their count or the init words, "
            "or set adapter.init to null for random tokens"
        )
    if n_tokens == 0:
        return torch.empty(0, width, device=device), init
    split = counts.index(n_tokens)
    return word_context(backbone, init)[:n_tokens], " ".join(words[split:])


class DeepPromptAdapter(Adapter):
    """Deep prompts on CLIP: learned text and image tokens at the first ``config.depth`` layers.

    Subclasses build their parameters and return them per layer from :meth:`text_prompts` (layer 0 is
    ``self.prompt.ctx``) and :meth:`visual_prompts`. What regularising objectives use (PromptSRC's, MMRL's,
    KgCoOp's) is public: :meth:`encode_images` and :meth:`text_features` (prompted, normalised),
    :meth:`clip_image_features` and :meth:`clip_text_features` (frozen CLIP's, normalised, no gradient),
    and the training outputs they switch on with :attr:`report_frozen` and :attr:`report_handwritten`.

    Outputs: ``logits`` ``(B, n_classes)``, ``features`` (prompted image features), ``text_features``
    (prompted, ``(n_classes, embed_dim)``); while training with ``report_frozen`` also
    ``frozen_features`` (CLIP's image features of the batch), ``frozen_text_features`` (the hand-written
    templates' mean per class) and ``frozen_logits`` (CLIP's zero-shot logits from those two).
    """

    #: Images are prompted, so their features change while training: the engine must not cache them.
    frozen_image_features = False
    #: Put ``handwritten_text_features`` in the training outputs (the ``kg-regularizer`` objective sets it).
    report_handwritten: bool = False
    #: Put ``frozen_features``, ``frozen_text_features`` and ``frozen_logits`` in the training outputs
    #: (objectives that pull the prompted model toward frozen CLIP set it).
    report_frozen: bool = False

    def __init__(self, config: Any, backbone: Backbone, task: Task, n_text: int) -> None:
        super().__init__(config, backbone, task)
        name = type(self).__name__.lower()
        backbone.require_token_text_tower(f"adapter.name={name} learns text prompts", "use a CLIP backbone")
        backbone.require_token_image_tower(f"adapter.name={name} learns image tokens", "use a CLIP ViT backbone")
        check_depth(backbone, config.depth)
        learned = n_text if config.depth > 0 else 0
        context, self.words = split_init(backbone, learned, config.init)
        self.prompt = PromptLearner(backbone, self.prompt_classnames(task.classnames), context, "end")
        self.prompt.ctx.requires_grad_(learned > 0)
        self.handwritten = HandwrittenTextFeatures()

    # -- what a subclass gives -------------------------------------------------------------------
    def text_prompts(self) -> list[torch.Tensor]:
        """The text tokens of layers 0 .. J - 1, each ``(n_text, text width)``; layer 0 is ``self.prompt.ctx``."""
        raise NotImplementedError

    def visual_prompts(self) -> list[torch.Tensor]:
        """The image tokens of layers 0 .. J - 1, each ``(n_visual, image width)``; empty for none."""
        raise NotImplementedError

    # -- prompted and frozen features ------------------------------------------------------------
    def prompt_classnames(self, classnames: list[str]) -> list[str]:
        """What follows the learned tokens in each class's prompt: the rest of the init words and the name."""
        return [f"{self.words} {name}" if self.words else name for name in classnames]

    def text_features(self) -> torch.Tensor:
        """Normalised prompted text features ``(n_classes, embed_dim)`` of the current classes."""
        deep = {k: tokens for k, tokens in enumerate(self.text_prompts()) if tokens.shape[0]}
        context = deep.pop(0, self.prompt.ctx)
        return self.prompt.encode_context(self.backbone, context, deep=deep)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised prompted image features ``(B, embed_dim)`` of preprocessed pixels."""
        tokens = [v for v in self.visual_prompts() if v.shape[0]]
        if not tokens:
            return F.normalize(self.backbone.encode_image(pixels), dim=-1)
        tower = self.backbone.image
        run = tower.run(tower.embed(pixels), insert={k: v.unsqueeze(0) for k, v in enumerate(tokens)})
        return F.normalize(tower.head(run.tokens), dim=-1)

    def clip_image_features(self, batch: dict[str, Any]) -> torch.Tensor:
        """Normalised image features of frozen CLIP ``(B, embed_dim)``, without gradient."""
        return self.image_features(batch)

    def clip_text_features(self) -> torch.Tensor:
        """Normalised frozen CLIP text features ``(n_classes, embed_dim)``: each class's mean over the hand-written
        templates (``adapter.templates``, else the dataset's), computed once per class list."""
        return self.handwritten(self.backbone, self.task.classnames, self.config.templates or self.task.templates)

    # -- the adapter contract --------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        """The trainable parameters by group (``text``, and ``visual`` or ``coupling``), empty groups left out."""
        raise NotImplementedError

    def set_task(self, task: Task) -> None:
        """Rebuild the frozen prompt rows for another class list (base-to-novel, cross-dataset evaluation)."""
        self.prompt.set_classnames(self.backbone, self.prompt_classnames(task.classnames))
        self.task = task
        self.clear_eval_cache()

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits of the batch's prompted image features against the prompted text features (cached in eval)."""
        image = self.encode_images(batch["image"])
        text = self.cached_in_eval("text_features", self.text_features)
        scale = self.backbone.logit_scale
        out = {"logits": scale * image @ text.to(image.dtype).t(), "features": image, "text_features": text}
        if self.training and self.report_handwritten:
            out["handwritten_text_features"] = self.clip_text_features()
        if self.training and self.report_frozen:
            frozen_image, frozen_text = self.clip_image_features(batch), self.clip_text_features()
            out["frozen_features"] = frozen_image
            out["frozen_text_features"] = frozen_text
            out["frozen_logits"] = scale * frozen_image @ frozen_text.to(frozen_image.dtype).t()
        return out
