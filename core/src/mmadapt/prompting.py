"""Text-prompt machinery for adapters: CoOp's prompt assembly, context initialisation, KgCoOp's targets.

A :class:`PromptLearner` holds a learned context and, per class, the frozen rows of the placeholder
text ``"X X ... X {name}{ending}"`` (``n_ctx`` X's; ``ending`` is ``"."`` unless given), tokenised
and embedded once. The SOS row and the rows after the context (name, ending, EOT, padding) are
non-persistent buffers, so checkpoints hold only the context and the class list can change at test
time. Layouts (KaiyangZhou/CoOp, ``trainers/coop.py``)::

    end    = [SOS][ctx][name][ending][EOT]
    middle = [SOS][ctx[:n_ctx // 2]][name][ctx[n_ctx // 2:]][ending][EOT]
    front  = [SOS][name][ctx][ending][EOT]

The three layouts hold the same rows in a different order and the same length, so ``middle`` and
``front`` are a fixed per-class permutation (one ``gather``) of ``end``, and the EOT index of the
placeholder stays valid. When the backbone's text tower is causal (``TokenTextTower.causal``), no
position up to an EOT sees what follows it, so sequences are cut after the longest prompt's EOT
(an exact speed-up); other towers see the padding and get all ``context_length`` positions.

On such a tower a shared context also makes the first positions of every prompt the same: SOS and
the context (``end``), SOS and the first half of the context (``middle``). :meth:`PromptLearner.encode_context`
then computes those positions once per call, as one row, and only each class's remaining positions
per class, attending to the shared keys and values at every layer
(:meth:`TokenTextTower.run_shared_prefix`): the same features with about ``n_classes x shared``
fewer positions through the tower. Where that would not be exact (a class-specific or per-class
context, the class name first, a bidirectional tower) the prompts are encoded whole and the
``mmadapt.prompting`` logger says why at debug level.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone
from .config import CLASS_TOKEN_POSITIONS
from .data import prompt_name
from .errors import UserError
from .towers import TokenTextTower
from .zeroshot import zeroshot_classifier

#: CoOp's default number of context tokens without a word initialisation.
DEFAULT_N_CTX = 16

logger = logging.getLogger(__name__)


def prompt_tower(backbone: Backbone) -> TokenTextTower:
    """The backbone's text tower as prompt learning needs it: a ``TokenTextTower``, or a ``UserError``."""
    return backbone.require_token_text_tower(
        "adapter: learned text prompts go into the text transformer", "choose an adapter without text prompts"
    )


def token_counts(backbone: Backbone, texts: list[str]) -> torch.Tensor:
    """BPE tokens of each text, without start and end tokens (a text cut at the context counts as cut)."""
    text = prompt_tower(backbone)
    return text.eot_index(text.tokenize(texts)) - 1


def word_context(backbone: Backbone, words: str) -> torch.Tensor:
    """Token embeddings ``(n_tokens, text_width)`` of ``words``, CoOp's context initialisation.

    CoOp counts the words split on spaces; this counts BPE tokens, so a word that is several tokens
    ("jack-o'-lantern") gives as many context vectors as the text encoder sees.
    """
    text = prompt_tower(backbone)
    ids = text.tokenize([prompt_name(words)])
    n_tokens = int(text.eot_index(ids)[0]) - 1
    if n_tokens < 1:
        raise UserError(f"adapter.init={words!r} has no tokens; give words such as 'a photo of a' or null")
    with torch.no_grad():
        return text.token_embedding(ids)[0, 1 : 1 + n_tokens].detach().clone()


def new_context(
    backbone: Backbone, n_ctx: int | None, init: str | None, n_classes: int | None = None
) -> torch.Tensor:
    """A fresh context: the embeddings of ``init``'s tokens, or N(0, 0.02) draws (CoOp).

    ``n_ctx`` defaults to 16 (CoOp) or to the token count of ``init``, which it must then equal.
    ``n_classes`` gives a class-specific context ``(n_classes, n_ctx, width)``; a word init is
    always shared, ``(n_ctx, width)``.
    """
    if init:
        ctx = word_context(backbone, init)
        if n_ctx is not None and n_ctx != ctx.shape[0]:
            raise UserError(
                f"adapter.n_ctx={n_ctx} but adapter.init={init!r} is {ctx.shape[0]} tokens; "
                "drop n_ctx (the init sets it) or change the init words"
            )
        return ctx
    shape = (n_ctx or DEFAULT_N_CTX, prompt_tower(backbone).width)
    if n_classes is not None:
        shape = (n_classes, *shape)
    return torch.empty(shape, device=next(backbone.parameters()).device).normal_(std=0.02)


class PromptLearner(nn.Module):
    """A learned context ``ctx`` and the frozen rows of every class's prompt.

    ``ctx`` is ``(n_ctx, width)`` (shared) or ``(n_classes, n_ctx, width)`` (class-specific, CSC).
    :meth:`assemble` puts any context of that length in the layout (methods that compute their
    context, or add something to it, pass their own); ``forward()`` assembles ``ctx``. ``eot``
    holds each prompt's EOT index and :attr:`length` the number of positions of the assembled
    prompts. :meth:`encode` runs assembled embeddings, changed or not, through the text tower.

    ``truncate=False`` keeps all ``context_length`` positions even on a causal tower, for methods
    whose parameters depend on the sequence length. ``share_prefix`` (an attribute too) lets
    :meth:`encode_context` compute the positions every prompt shares once, where that is exact.
    """

    def __init__(
        self,
        backbone: Backbone,
        classnames: list[str],
        ctx: torch.Tensor,
        position: str = "end",
        *,
        endings: list[str] | None = None,
        truncate: bool = True,
        share_prefix: bool = True,
    ) -> None:
        super().__init__()
        if position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(
                f"class token position must be one of {', '.join(CLASS_TOKEN_POSITIONS)}; got {position!r}"
            )
        self.position = position
        self.truncate = truncate
        self.share_prefix = share_prefix
        self.n_ctx = ctx.shape[-2]
        # Why the prefix cannot be shared with this tower and layout (None: it can), and reasons logged.
        self._unshared: str | None = None
        self._logged: set[str] = set()
        self.ctx = nn.Parameter(ctx)
        for name in ("prefix", "suffix", "eot", "order"):
            self.register_buffer(name, None, persistent=False)
        self.set_classnames(backbone, classnames, endings)

    @property
    def csc(self) -> bool:
        """Whether every class has its own context (CoOp's class-specific context)."""
        return self.ctx.ndim == 3

    @property
    def length(self) -> int:
        """Positions of the assembled prompts: the longest EOT index + 1 when cut, else ``context_length``."""
        return self.prefix.shape[1] + self.n_ctx + self.suffix.shape[1]

    def set_classnames(self, backbone: Backbone, classnames: list[str], endings: list[str] | None = None) -> None:
        """Rebuild the frozen rows for another class list; a class-specific context cannot change classes.

        ``endings`` gives, per class, the text right after its name (default ``"."``), e.g. a
        description: ``", which has four legs."``.
        """
        if self.csc and len(classnames) != self.ctx.shape[0]:
            raise UserError(
                f"a class-specific context (adapter.csc=true) was learned for {self.ctx.shape[0]} classes and "
                f"cannot serve {len(classnames)} other ones; use a shared context for new classes"
            )
        if endings is not None and len(endings) != len(classnames):
            raise ValueError(f"{len(endings)} prompt endings for {len(classnames)} classes; give one per class")
        names = [prompt_name(name) for name in classnames]
        endings = endings if endings is not None else ["."] * len(names)
        texts = [f"{name}{ending}" for name, ending in zip(names, endings)]
        tower = prompt_tower(backbone)
        needed = token_counts(backbone, texts) + self.n_ctx + 2  # SOS, ctx, name and ending, EOT
        if int(needed.max()) > tower.context_length:
            raise UserError(
                f"class prompt {texts[int(needed.argmax())]!r} with {self.n_ctx} context tokens does not fit the "
                f"model's {tower.context_length} text positions; shorten the class name or use fewer context tokens"
            )
        placeholder = " ".join(["X"] * self.n_ctx)
        ids = tower.tokenize([f"{placeholder} {text}" for text in texts])
        eot = tower.eot_index(ids)
        length = int(eot.max()) + 1 if self.truncate and tower.causal else ids.shape[1]
        with torch.no_grad():
            embeddings = tower.token_embedding(ids[:, :length])
        self.prefix = embeddings[:, :1].clone()
        self.suffix = embeddings[:, 1 + self.n_ctx :].clone()
        self.eot = eot
        self._unshared = self._why_not_shared(tower)
        if self.position == "end":
            self.order = None
        else:
            self.order = self._order(token_counts(backbone, names).tolist(), length, eot.device)

    @property
    def shared_length(self) -> int:
        """Positions at the start of every prompt that hold the same tokens for a shared context: SOS and the
        context before the class name."""
        before_name = {"end": self.n_ctx, "middle": self.n_ctx // 2, "front": 0}[self.position]
        return 1 + before_name

    def _why_not_shared(self, tower: TokenTextTower) -> str | None:
        if self.csc:
            return "every class has its own context (csc)"
        if self.shared_length < 2:
            return f"the class name comes right after the start token (class_token_position: {self.position})"
        if not tower.shares_prefixes:
            return f"{tower.name} is not causal or its attention takes no key/value prefix"
        return None

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

    def assemble(self, context: torch.Tensor) -> torch.Tensor:
        """Prompt embeddings ``(..., n_classes, length, width)`` of a context in this learner's layout.

        ``context`` is ``(n_ctx, width)`` (shared by the classes), ``(n_classes, n_ctx, width)`` or
        batched ``(..., n_classes or 1, n_ctx, width)``, e.g. the learned context plus a bias per
        image (CoCoOp) or per class.
        """
        if context.ndim == 2:
            context = context.unsqueeze(0)
        context = context.expand(*context.shape[:-3], self.prefix.shape[0], -1, -1)
        leading = context.shape[:-3]
        prefix = self.prefix.to(context.dtype).expand(*leading, -1, -1, -1)
        suffix = self.suffix.to(context.dtype).expand(*leading, -1, -1, -1)
        prompts = torch.cat([prefix, context, suffix], dim=-2)
        if self.order is None:
            return prompts
        order = self.order.expand(*prompts.shape[:-2], -1)
        return torch.gather(prompts, -2, order.unsqueeze(-1).expand_as(prompts))

    def forward(self, bias: torch.Tensor | None = None) -> torch.Tensor:
        """Prompts of ``ctx``: ``(n_classes, length, width)``, or ``(B, n_classes, length, width)`` with a
        bias ``(B, width)`` added to every context token (CoCoOp)."""
        return self.assemble(self.ctx if bias is None else self.ctx + bias[:, None, None, :])

    def encode(self, backbone: Backbone, prompts: torch.Tensor) -> torch.Tensor:
        """Normalised text features ``(..., n_classes, embed_dim)`` of prompt embeddings
        ``(..., n_classes, length, width)``, in one text-encoder call."""
        leading = prompts.shape[:-2]
        eot = self.eot.expand(*leading).reshape(-1)
        features = prompt_tower(backbone).encode_embeddings(prompts.reshape(-1, *prompts.shape[-2:]), eot)
        return F.normalize(features, dim=-1).view(*leading, -1)


    def encode_context(
        self,
        backbone: Backbone,
        context: torch.Tensor,
        *,
        offset: torch.Tensor | None = None,
        positions: int | None = None,
        deep: Mapping[int, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Normalised text features ``(n_classes, embed_dim)`` of the prompts around ``context``.

        ``context`` is ``(n_ctx, width)`` (shared) or ``(n_classes, n_ctx, width)``; ``offset``
        ``(s, width)`` is added to the first ``s`` positions of every prompt (EPT's offset); only the
        first ``positions`` positions are encoded (default :attr:`length`). Equals
        ``encode(backbone, assemble(context)[:, :positions] + offset)``; with a shared context on a
        tower that :attr:`~TokenTextTower.shares_prefixes`, the first :attr:`shared_length` positions
        run once for all classes, and each prompt stops at its own end token (that tower is causal, so
        later positions never change the features, whatever ``truncate`` says).

        ``deep`` gives deep text prompts (IVLP, MaPLe): ``{layer: (n_ctx, width)}``, the tokens that
        replace the context positions before text block ``layer`` (1 .. depth - 1; block 0 gets
        ``context``), the same for every class and without positional embedding. It needs the ``end``
        layout, where the context holds the same positions in every prompt. The result equals
        :meth:`TokenTower.run` on the whole prompts with ``replace={layer: (1, tokens)}``; the shared
        prefix stays shared at every layer, since the replaced positions lie inside it.
        """
        replace = self._deep_replacements(backbone, deep)
        n = positions or self.length
        prompts = self.assemble(context)[:, :n]
        if offset is not None:
            offset = offset[: prompts.shape[1]].to(prompts.dtype)
            prompts = torch.cat([prompts[:, : len(offset)] + offset, prompts[:, len(offset) :]], dim=1)
        reason = self._unshared if self.share_prefix else "share_prefix is off"
        if reason is None and context.ndim != 2:
            reason = "the context differs per class"
        if reason is not None:
            if reason not in self._logged:
                self._logged.add(reason)
                logger.debug("text prompts encoded whole, no shared prefix: %s", reason)
            if not replace:
                return self.encode(backbone, prompts)
            tower = prompt_tower(backbone)
            features = tower.head(tower.run(tower.embed(prompts), replace=replace).tokens, self.eot)
            return F.normalize(features, dim=-1)
        shared = self.shared_length
        prefix = torch.cat([self.prefix[:1].to(context.dtype), context[: shared - 1].unsqueeze(0)], dim=1)
        if offset is not None:
            prefix = prefix + F.pad(offset[:shared], (0, 0, 0, shared - len(offset[:shared])))
        changes = {"replace": replace} if replace else {}
        features = prompt_tower(backbone).encode_shared_prefix(prefix, prompts[:, shared:], self.eot, **changes)
        return F.normalize(features, dim=-1)

    def _deep_replacements(
        self, backbone: Backbone, deep: Mapping[int, torch.Tensor] | None
    ) -> dict[int, tuple[int, torch.Tensor]]:
        """``deep`` as :meth:`TokenTower.run`'s ``replace``: each layer's tokens at the context positions."""
        if not deep:
            return {}
        if self.position != "end":
            raise ValueError(
                f"deep text prompts replace the context at the same positions in every prompt: they need "
                f"class_token_position 'end', not {self.position!r}"
            )
        depth = prompt_tower(backbone).depth
        replace = {}
        for layer, tokens in deep.items():
            if not 1 <= layer < depth:
                raise ValueError(
                    f"deep text prompts go before text blocks 1 .. {depth - 1} (block 0 gets the context); "
                    f"got layer {layer}"
                )
            if tokens.shape != (self.n_ctx, self.ctx.shape[-1]):
                raise ValueError(
                    f"the deep text prompt of layer {layer} must have shape ({self.n_ctx}, {self.ctx.shape[-1]}), "
                    f"the context's; got {tuple(tokens.shape)}"
                )
            replace[layer] = (1, tokens.unsqueeze(0))
        return replace


class HandwrittenTextFeatures(nn.Module):
    """Frozen features of hand-written prompts (KgCoOp's targets), computed once per class list.

    ``features(backbone, classnames, templates)`` is :func:`mmadapt.zeroshot_classifier` (normalised,
    ``(n_classes, embed_dim)``, fp32), kept in a non-persistent buffer until the classes or the
    templates change; as a submodule of an adapter it moves with it and stays out of checkpoints.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("features", None, persistent=False)
        self._key: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def forward(self, backbone: Backbone, classnames: list[str], templates: list[str]) -> torch.Tensor:
        """The features of ``templates`` filled with every class name, from the cache when it matches."""
        key = (tuple(classnames), tuple(templates))
        if self.features is None or key != self._key:
            with torch.no_grad():
                self.features = zeroshot_classifier(backbone, list(classnames), list(templates))
            self._key = key
        return self.features
