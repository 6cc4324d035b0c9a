"""CoOp's prompt learner: learned context tokens around frozen class-name tokens.

Each class gets the placeholder text ``"X X ... X {name}."`` (``n_ctx`` X's), tokenised and embedded
once. Only the context rows train; the SOS row and the rows after the context (name, ".", EOT,
padding) are frozen, non-persistent buffers, so the class list can change at test time. Layouts
(KaiyangZhou/CoOp, ``trainers/coop.py``)::

    end    = [SOS][ctx][name][.][EOT]
    middle = [SOS][ctx[:n_ctx // 2]][name][ctx[n_ctx // 2:]][.][EOT]
    front  = [SOS][name][ctx][.][EOT]

The three layouts hold the same rows in a different order and the same length, so ``middle`` and
``front`` are a fixed per-class permutation (one ``gather``) of ``end``, and the EOT index of the
placeholder stays valid. Sequences are cut after the longest prompt's EOT: under the causal mask no
position up to an EOT sees what follows, so the features are unchanged (an exact speed-up).
"""

from __future__ import annotations

import torch
from mmadapt import Backbone, UserError, prompt_name
from torch import nn

from .config import POSITIONS

#: CoOp's default number of context tokens without a word initialisation.
DEFAULT_N_CTX = 16


def token_counts(backbone: Backbone, texts: list[str]) -> torch.Tensor:
    """BPE tokens of each text, without start and end tokens."""
    return backbone.eot_index(backbone.tokenize(texts)) - 1


def word_context(backbone: Backbone, words: str) -> torch.Tensor:
    """Token embeddings ``(n_tokens, text_width)`` of ``words``, CoOp's context initialisation.

    CoOp counts the words split on spaces; we count BPE tokens, so a word that is several tokens
    ("jack-o'-lantern") gives as many context vectors as the text encoder sees.
    """
    ids = backbone.tokenize([prompt_name(words)])
    n_tokens = int(backbone.eot_index(ids)[0]) - 1
    if n_tokens < 1:
        raise UserError(f"adapter.init={words!r} has no tokens; give words such as 'a photo of a' or null")
    with torch.no_grad():
        return backbone.token_embedding(ids)[0, 1 : 1 + n_tokens].detach().clone()


def new_context(
    backbone: Backbone, n_ctx: int | None, init: str | None, n_classes: int | None = None
) -> torch.Tensor:
    """A fresh context: the embeddings of ``init``'s tokens, or N(0, 0.02) draws (CoOp).

    ``n_ctx`` defaults to 16 (CoOp) or to the token count of ``init``, which it must then equal.
    ``n_classes`` gives a class-specific context ``(n_classes, n_ctx, width)``.
    """
    if init:
        ctx = word_context(backbone, init)
        if n_ctx is not None and n_ctx != ctx.shape[0]:
            raise UserError(
                f"adapter.n_ctx={n_ctx} but adapter.init={init!r} is {ctx.shape[0]} tokens; "
                "drop n_ctx (the init sets it) or change the init words"
            )
        return ctx
    shape = (n_ctx or DEFAULT_N_CTX, backbone.text_width)
    if n_classes is not None:
        shape = (n_classes, *shape)
    return torch.empty(shape, device=next(backbone.parameters()).device).normal_(std=0.02)


class PromptLearner(nn.Module):
    """Learned context ``ctx`` and the frozen rows of every class's prompt.

    ``ctx`` is ``(n_ctx, width)`` (shared) or ``(n_classes, n_ctx, width)`` (class-specific, CSC).
    ``forward()`` gives prompt embeddings ``(n_classes, L, width)``; ``forward(bias)`` with a bias
    ``(B, width)`` added to every context token (CoCoOp) gives ``(B, n_classes, L, width)``.
    ``eot`` holds each prompt's EOT index, ``L`` is the longest EOT index + 1.
    """

    def __init__(self, backbone: Backbone, classnames: list[str], ctx: torch.Tensor, position: str = "end") -> None:
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"class token position must be one of {', '.join(POSITIONS)}; got {position!r}")
        self.position = position
        self.n_ctx = ctx.shape[-2]
        self.ctx = nn.Parameter(ctx)
        for name in ("prefix", "suffix", "eot", "order"):
            self.register_buffer(name, None, persistent=False)
        self.set_classnames(backbone, classnames)

    @property
    def csc(self) -> bool:
        """Whether every class has its own context (CoOp's class-specific context)."""
        return self.ctx.ndim == 3

    def set_classnames(self, backbone: Backbone, classnames: list[str]) -> None:
        """Rebuild the frozen rows for another class list; a class-specific context cannot change classes."""
        if self.csc and len(classnames) != self.ctx.shape[0]:
            raise UserError(
                f"a class-specific context (adapter.csc=true) was learned for {self.ctx.shape[0]} classes and "
                f"cannot serve {len(classnames)} other ones; use a shared context for new classes"
            )
        names = [prompt_name(name) for name in classnames]
        name_lengths = token_counts(backbone, names)
        longest = int(name_lengths.max()) + self.n_ctx + 3  # SOS, ctx, name, ".", EOT
        if longest > backbone.context_length:
            raise UserError(
                f"class name {names[int(name_lengths.argmax())]!r} with {self.n_ctx} context tokens needs {longest} "
                f"text positions; the model has {backbone.context_length}"
            )
        placeholder = " ".join(["X"] * self.n_ctx)
        ids = backbone.tokenize([f"{placeholder} {name}." for name in names])
        eot = backbone.eot_index(ids)
        length = int(eot.max()) + 1
        with torch.no_grad():
            embeddings = backbone.token_embedding(ids[:, :length])
        self.prefix = embeddings[:, :1].clone()
        self.suffix = embeddings[:, 1 + self.n_ctx :].clone()
        self.eot = eot
        self.order = None if self.position == "end" else self._order(name_lengths.tolist(), length, eot.device)

    def _order(self, name_lengths: list[int], length: int, device: torch.device) -> torch.Tensor:
        """Per class, the row of the ``end`` layout that each position of this layout takes."""
        n, half = self.n_ctx, self.n_ctx // 2
        rows = []
        for k in name_lengths:
            ctx, name, rest = list(range(1, 1 + n)), list(range(1 + n, 1 + n + k)), list(range(1 + n + k, length))
            if self.position == "middle":
                rows.append([0, *ctx[:half], *name, *ctx[half:], *rest])
            else:
                rows.append([0, *name, *ctx, *rest])
        return torch.tensor(rows, dtype=torch.long, device=device)

    def forward(self, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Prompt embeddings ``(n_classes, L, width)``, or ``(B, n_classes, L, width)`` with a bias ``(B, width)``."""
        n_classes = self.prefix.shape[0]
        ctx = self.ctx if self.csc else self.ctx.unsqueeze(0).expand(n_classes, -1, -1)
        prefix, suffix = self.prefix, self.suffix
        if bias is not None:
            batch = bias.shape[0]
            ctx = ctx.unsqueeze(0) + bias[:, None, None, :]
            prefix = prefix.unsqueeze(0).expand(batch, -1, -1, -1)
            suffix = suffix.unsqueeze(0).expand(batch, -1, -1, -1)
        prompts = torch.cat([prefix.to(ctx.dtype), ctx, suffix.to(ctx.dtype)], dim=-2)
        if self.order is None:
            return prompts
        order = self.order.expand(*prompts.shape[:-2], -1)
        return torch.gather(prompts, -2, order.unsqueeze(-1).expand_as(prompts))
