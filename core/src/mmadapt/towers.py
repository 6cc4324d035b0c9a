"""Towers: the image and text encoders of a backbone, with layer-level access where they are transformers.

A :class:`~mmadapt.Backbone` holds an image tower and, for CLIP models, a text tower. What a tower can
do follows from its type:

- :class:`ImageTower`: pooled features and intermediate levels (any image encoder, a CLIP ResNet too);
- :class:`TokenImageTower`: a ViT, which also exposes its layers (a :class:`TokenTower`);
- :class:`TextTower`: tokenizer, vocabulary and text features of token ids;
- :class:`TokenTextTower`: a transformer text tower pooled at the end token, which also exposes its
  layers and encodes prompt embeddings.

A token tower is token embedding (with positions), blocks, final norm, pooling and projection;
:meth:`TokenTower.run` runs its blocks with tokens inserted or replaced at chosen layers and key/value
prefixes, and with none of them equals the tower's own forward.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Key and value tokens ``(B or 1, P, width)`` appended to one attention layer's keys and values.
Prefix = tuple[torch.Tensor, torch.Tensor]


def causal_mask(length: int, extra_keys: int = 0, like: torch.Tensor | None = None) -> torch.Tensor:
    """An additive ``(length, length + extra_keys)`` mask: no query sees a later position; extra keys are seen by all.

    The extra keys are prefix keys appended after the sequence's own (a shared prefix computed once
    comes before every position of the sequence, so each of its keys is visible).
    """
    device, dtype = (like.device, like.dtype) if like is not None else (None, torch.float32)
    mask = torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu(1)
    if extra_keys:
        mask = torch.cat([mask, mask.new_zeros(length, extra_keys)], dim=1)
    return mask


def multi_head_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_heads: int,
    prefix: Prefix | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """Scaled dot-product attention of projected ``(B, T, width)`` queries, keys and values.

    ``prefix`` keys and values ``(B or 1, P, width)`` are appended after the projections; with
    ``causal`` no query sees a later position of its own sequence, while every prefix key stays
    visible. The result is ``(B, T, width)`` with heads merged, before the output projection.
    """
    batch, length, width = q.shape
    extra = 0
    if prefix is not None:
        keys, values = prefix
        for name, tensor in (("keys", keys), ("values", values)):
            if tensor.ndim != 3 or tensor.shape[-1] != width or tensor.shape[0] not in (1, batch):
                raise ValueError(
                    f"prefix {name} must have shape (B or 1, P, {width}) for a batch of {batch}; "
                    f"got {tuple(tensor.shape)}"
                )
        if keys.shape[0] == values.shape[0] == 1 and batch > 1:
            return _attention_with_one_prefix(q, k, v, keys.to(k.dtype), values.to(v.dtype), num_heads, causal)
        extra = keys.shape[1]
        k = torch.cat([k, keys.to(k.dtype).expand(batch, -1, -1)], dim=1)
        v = torch.cat([v, values.to(v.dtype).expand(batch, -1, -1)], dim=1)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, t.shape[1], num_heads, width // num_heads).transpose(1, 2)

    mask = causal_mask(length, extra, like=q) if causal else None
    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask)
    return out.transpose(1, 2).reshape(batch, length, width)


def _attention_with_one_prefix(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    num_heads: int,
    causal: bool,
) -> torch.Tensor:
    """:func:`multi_head_attention` with one prefix ``(1, P, width)`` for the whole batch, never copied per row.

    Scores against the prefix are one matrix product of every query with the prefix keys (the
    gradient of the prefix sums over the batch inside it); one softmax runs over the sequence's own
    scores and the prefix's; the output adds both weighted value sums. The same result as appending
    the expanded prefix, with no ``(B, T + P, width)`` keys and values made or saved for backward.
    """
    batch, length, width = q.shape
    prefix_length, head_width = keys.shape[1], width // num_heads
    scale = head_width**-0.5

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], t.shape[1], num_heads, head_width).transpose(1, 2)

    q_heads = heads(q)
    own = q_heads @ heads(k).transpose(-1, -2) * scale  # (B, h, T, T)
    if causal:
        own = own + causal_mask(length, like=q)
    flat_q = q_heads.transpose(0, 1).reshape(num_heads, batch * length, head_width)
    shared = flat_q @ heads(keys)[0].transpose(-1, -2) * scale  # (h, B * T, P)
    shared = shared.reshape(num_heads, batch, length, prefix_length).transpose(0, 1)
    weights = torch.softmax(torch.cat([own, shared], dim=-1), dim=-1)
    out = weights[..., :length] @ heads(v)
    to_prefix = weights[..., length:].transpose(0, 1).reshape(num_heads, batch * length, prefix_length)
    out = out + (to_prefix @ heads(values)[0]).reshape(num_heads, batch, length, head_width).transpose(0, 1)
    return out.transpose(1, 2).reshape(batch, length, width)


class TransformerBlock(ABC):
    """One frozen pre-norm transformer block of a token tower, split into the steps methods recombine.

    Tokens are ``(B, T, width)``, batch first, whatever layout the wrapped model uses. ``block(x)``
    runs the whole block; ``block(x, prefix)`` adds key/value prefix tokens to its attention. A block
    of a causal text tower applies its causal mask itself. The parts let a method run its own token
    stream through the frozen weights (MULTI-LANE): ``x + attention(norm1(x))`` then
    ``x + feed_forward(x)`` is the block; :meth:`keys_values` gives the keys and values its attention
    computes, so positions computed once can serve as another sequence's prefix.
    """

    #: Whether no position attends to a later one (a causal text tower's blocks).
    causal: bool = False

    @abstractmethod
    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        """The block's first norm (LN1), applied before attention."""

    @abstractmethod
    def attention(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        """The attention branch on already normalised tokens: what the block adds to the residual stream.

        Self-attention with the frozen qkv and output projections (and layer scale, where the model
        has one), causal where the block is. ``prefix = (keys, values)``, each ``(B or 1, P, width)``,
        is appended to the projected keys and values (prefix tuning), so queries also attend to it.
        """

    @abstractmethod
    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP branch on the residual stream (second norm, MLP, layer scale) before it is added."""

    @abstractmethod
    def keys_values(self, x: torch.Tensor) -> Prefix:
        """The keys and values ``(B, T, width)`` the attention computes from the residual stream ``x``.

        Passed as ``prefix`` to this block for another sequence, they let its tokens attend to
        ``x``'s positions as if those came first in the same sequence.
        """

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        """Run the block on ``x``, optionally with a key/value prefix in its attention."""
        x = x + self.attention(self.norm1(x), prefix)
        return x + self.feed_forward(x)


@dataclass
class TokenRun:
    """What :meth:`TokenTower.run` returns."""

    #: The last block's output ``(B, T, width)`` at the input's positions (inserted tokens taken out),
    #: the raw residual stream before the final norm.
    tokens: torch.Tensor
    #: The inserted tokens' output ``(B, P, width)``, or None when nothing was inserted.
    inserted: torch.Tensor | None = None
    #: The requested blocks' outputs at the input's positions, in request order (``layers=``).
    layers: list[torch.Tensor] = field(default_factory=list)


@dataclass
class SharedPrefixRun:
    """What :meth:`TokenTextTower.run_shared_prefix` returns: the last block's raw outputs, split as given."""

    #: Every sequence's own positions after the shared prefix ``(n, S, width)``; a list of them, one per
    #: group, when the suffixes came in groups.
    tokens: torch.Tensor | list[torch.Tensor]
    #: The shared prefix's positions ``(1, P, width)`` (inserted tokens taken out).
    prefix: torch.Tensor
    #: The inserted tokens' output ``(1, G, width)``, or None when nothing was inserted.
    inserted: torch.Tensor | None = None


class TokenTower(ABC):
    """A transformer tower whose layers are reachable: embedding, blocks, final norm, pooling, projection."""

    @property
    @abstractmethod
    def width(self) -> int:
        """Width of the tower's tokens."""

    @property
    @abstractmethod
    def blocks(self) -> Sequence[TransformerBlock]:
        """The frozen transformer blocks, first to last."""

    @property
    def depth(self) -> int:
        """Number of blocks."""
        return len(self.blocks)

    @abstractmethod
    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tower's final norm applied token-wise (CLIP's ``ln_post`` or ``ln_final``)."""

    def run(
        self,
        tokens: torch.Tensor,
        *,
        insert: Mapping[int, torch.Tensor] | None = None,
        insert_at: int | None = None,
        replace: Mapping[int, tuple[int, torch.Tensor]] | None = None,
        prefixes: Mapping[int, Prefix] | Sequence[Prefix | None] | None = None,
        layers: Sequence[int] | None = None,
    ) -> TokenRun:
        """Run the blocks on embedded ``tokens`` ``(B, T, width)``, changing the stream at chosen layers.

        - ``insert={k: extra}``: before block ``k`` the inserted group becomes ``extra``
          ``(B or 1, P, width)``, dropping the group an earlier layer inserted (deep prompts: tokens
          inserted at the first layer and replaced at each deeper one); between the given layers the
          group runs on. The group sits before position ``insert_at`` of the input (after the class
          token: 1; after VPT's prefix tokens: ``num_prefix_tokens``); None puts it after the last
          token. It gets no positional embedding.
        - ``replace={k: (start, new)}``: before block ``k`` the input's positions
          ``start .. start + n - 1`` become ``new`` ``(B or 1, n, width)`` (text prompts at deeper
          layers; at block 0 patch offsets or a shallow prompt).
        - ``prefixes``: key/value prefix of each block (a mapping from block index, or one entry per
          block from the first, None for none).
        - ``layers``: also return those blocks' outputs (indices from 0, negative from the end); blocks
          after the deepest one are then not run and ``tokens`` is its output.

        With none of them this is the tower's own forward through its blocks, exactly.
        """
        blocks = list(self.blocks)
        depth = len(blocks)
        by_block = _prefix_map(prefixes, depth)
        insert, replace = dict(insert or {}), dict(replace or {})
        for name, where in (("insert", insert), ("replace", replace), ("prefixes", by_block)):
            bad = sorted(k for k in where if not 0 <= k < depth)
            if bad:
                raise ValueError(f"{name} names blocks {bad}; the tower has blocks 0 .. {depth - 1}")
        wanted = level_indices(layers, depth, "blocks") if layers is not None else []
        last = max(wanted) if wanted else depth - 1
        at = tokens.shape[1] if insert_at is None else insert_at
        if not 0 <= at <= tokens.shape[1]:
            raise ValueError(f"insert_at={insert_at} is outside the {tokens.shape[1]} input positions")
        x, group = tokens, 0
        taken: dict[int, torch.Tensor] = {}
        for index, block in enumerate(blocks[: last + 1]):
            if index in replace:
                start, new = replace[index]
                x = _replace(x, start if start < at else start + group, new, at, group)
            if index in insert:
                extra = _batched(insert[index], x, "inserted tokens")
                x = torch.cat([x[:, :at], extra, x[:, at + group :]], dim=1)
                group = extra.shape[1]
            x = block(x, by_block.get(index))
            if index in wanted:
                taken[index] = _without_group(x, at, group)
        inserted = x[:, at : at + group] if group else None
        return TokenRun(_without_group(x, at, group), inserted, [taken[i] for i in wanted])


class ImageTower(ABC):
    """An image encoder: pooled features and intermediate levels of pixels already prepared for it."""

    #: Shown in error messages, e.g. ``"openclip ViT-B-16 image tower"``.
    name: str = "image tower"

    @property
    @abstractmethod
    def width(self) -> int:
        """Width of the tower's tokens, or the channels of a convolutional tower's last feature map."""

    @property
    @abstractmethod
    def module(self) -> nn.Module:
        """The module holding the tower's layers (where LoRA layers are injected)."""

    @abstractmethod
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image features ``(B, embed_dim)`` of normalised pixels, as the model's own forward makes them."""

    @abstractmethod
    def intermediates(self, pixels: torch.Tensor, layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """The tower's intermediate features, one per requested level, in request order.

        Transformer towers have a level per block: its output tokens ``(B, T, width)`` with the prefix
        (class, register) tokens first, the raw residual stream without the final norm. Convolutional
        towers have a level per stage: feature maps ``(B, C, H, W)``; a CLIP ResNet has five, the stem
        output (after its pooling), then ``layer1`` ... ``layer4``. Levels count from 0 (negative from
        the end); None takes them all. Levels after the deepest requested one are not run.
        """

    @abstractmethod
    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """Every parameter tensor of the tower by its name in ``Backbone.named_parameters()``."""


class TokenImageTower(ImageTower, TokenTower):
    """A ViT image tower: patch tokens after prefix (class, register) tokens, with layer-level access."""

    @property
    @abstractmethod
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: 1 (the class token) for CLIP; timm ViTs may add registers."""

    @property
    @abstractmethod
    def projection(self) -> torch.Tensor | None:
        """The frozen ``(width, embed_dim)`` projection after pooling, or None if there is none."""

    @abstractmethod
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, num_prefix_tokens + N, width)`` entering the first block.

        Patch embedding, prefix tokens, positional embedding and the pre-norm the model has.
        """

    @abstractmethod
    def class_token(self) -> torch.Tensor:
        """The pretrained class token ``(width,)`` through the pre-norm, with no positional embedding.

        The start of a token stream of its own next to the image's (a MULTI-LANE lane); the class
        token inside :meth:`embed` carries its positional embedding as well.
        """

    @abstractmethod
    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Image features ``(B, embed_dim)`` from the last block's output: final norm, pooling, projection."""

    def patch_count(self, size: int) -> int:
        """N, the patch tokens of a ``size x size`` input (prefix tokens not counted)."""
        reference = next(iter(self.parameter_blocks().values()))
        pixels = torch.zeros(1, 3, size, size, device=reference.device, dtype=reference.dtype)
        with torch.no_grad():
            return self.embed(pixels).shape[1] - self.num_prefix_tokens


class TextTower(ABC):
    """A text encoder: its tokenizer and the text features of token ids."""

    #: Shown in error messages, e.g. ``"openclip ViT-B-16 text tower"``.
    name: str = "text tower"

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Number of text positions (77 for CLIP)."""

    @property
    @abstractmethod
    def module(self) -> nn.Module:
        """The module holding the tower's layers (where LoRA layers are injected)."""

    @property
    def causal(self) -> bool:
        """Whether text features pooled at the end token ignore every position after it.

        True when the tower attends causally and pools at the end token, so cutting a sequence after
        its longest end token gives exactly the same features (prompt learners use this to save
        compute). False for a bidirectional tower (MobileCLIP, Hugging Face text models) or one
        pooling elsewhere (CoCa's appended class token), which sees the padding.
        """
        return False

    @abstractmethod
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids ``(n, context_length)`` with start and end tokens and padding, on the tower's device."""

    @abstractmethod
    def vocabulary(self) -> list[str]:
        """Every token id's text: entry ``i`` is token ``i`` decoded on its own, surrounding spaces stripped.

        Special tokens keep their markers (``<start_of_text>``); different ids may decode to the same
        text (a word and the same letters as a word piece). Used to rank single tokens as prompts.
        """

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer produces (49,408 for CLIP's BPE)."""
        return len(self.vocabulary())

    @abstractmethod
    def encode(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Text features ``(n, embed_dim)`` of token ids, as the model's own text encoder makes them."""

    @abstractmethod
    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """Every parameter tensor of the tower by its name in ``Backbone.named_parameters()``."""


class TokenTextTower(TextTower, TokenTower):
    """A transformer text tower pooled at an end token, with layer-level access and prompt embeddings in."""

    @abstractmethod
    def token_embedding(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``(n, L, width)`` of token ids, before the positional embedding."""

    @abstractmethod
    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of each sequence's end token, the position text features are pooled from."""

    @abstractmethod
    def embed(self, embeddings: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Tokens entering the first block: embeddings ``(n, L, width)`` plus positions ``start .. start + L - 1``.

        ``start + L <= context_length``; the blocks' causal mask is cut to the sequence they get. A
        ``start`` above 0 embeds the positions after a shared prefix (:meth:`run_shared_prefix`).
        """

    @property
    def shares_prefixes(self) -> bool:
        """Whether :meth:`run_shared_prefix` is available and exact: a :attr:`causal` tower whose blocks take
        key/value prefixes."""
        return self.causal

    @abstractmethod
    def head(self, tokens: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """Text features ``(n, embed_dim)`` from the last block's output: final norm, the token at
        ``eot_index``, projection."""

    def encode_embeddings(self, embeddings: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """Text features of prompt embeddings ``(n, L, width)``, ``L <= context_length``, pooled at ``eot_index``.

        Sequences shorter than ``context_length`` are exact on a :attr:`causal` tower whenever every
        ``eot_index < L``.
        """
        return self.head(self.run(self.embed(embeddings)).tokens, eot_index)

    def run_shared_prefix(
        self,
        prefix: torch.Tensor,
        suffix: torch.Tensor | Sequence[torch.Tensor],
        *,
        insert: Mapping[int, torch.Tensor] | None = None,
        insert_at: int | None = None,
        replace: Mapping[int, tuple[int, torch.Tensor]] | None = None,
    ) -> SharedPrefixRun:
        """Run ``n`` sequences sharing a start: ``prefix`` ``(1, P, width)``, then each row of ``suffix`` ``(n, S, w)``.

        Both are embedded tokens (:meth:`embed`; the suffix from ``start=P``). On a causal tower no
        prefix position sees the suffix, so the prefix runs once, as one row, and at every block each
        sequence's suffix attends to the prefix's keys and values (:meth:`TransformerBlock.keys_values`):
        the result equals :meth:`run` on the ``n`` concatenated sequences, with about ``n x P`` fewer
        positions computed. ``insert`` and ``replace`` are :meth:`run`'s, in the concatenated
        sequence's positions, with what lands in the prefix the same for every sequence (batch 1): deep
        text prompts replacing the context at deeper layers keep the prefix shared at every layer.
        Inserted tokens must sit within the prefix (``insert_at <= P``).

        ``suffix`` may also be a sequence of groups ``(n_i, S_i, width)`` of different lengths (sequences
        cut after their own end tokens), all after the same prefix; replaced tokens after the prefix
        then hold for every sequence (batch 1).
        """
        if not self.shares_prefixes:
            raise ValueError(
                f"{self.name}: a shared prefix needs a causal text tower whose blocks take key/value prefixes; "
                "encode the whole sequences with run()"
            )
        grouped = not isinstance(suffix, torch.Tensor)
        groups = list(suffix) if grouped else [suffix]
        if prefix.ndim != 3 or prefix.shape[0] != 1 or not groups or any(
            rest.ndim != 3 or rest.shape[-1] != prefix.shape[-1] for rest in groups
        ):
            raise ValueError(
                f"a shared prefix is (1, P, width) and the suffixes (n, S, width); got {tuple(prefix.shape)} "
                f"and {[tuple(rest.shape) for rest in groups]}"
            )
        blocks = list(self.blocks)
        depth, shared = len(blocks), prefix.shape[1]
        insert, replace = dict(insert or {}), dict(replace or {})
        for name, where in (("insert", insert), ("replace", replace)):
            bad = sorted(k for k in where if not 0 <= k < depth)
            if bad:
                raise ValueError(f"{name} names blocks {bad}; the tower has blocks 0 .. {depth - 1}")
        if insert and (insert_at is None or not 0 <= insert_at <= shared):
            raise ValueError(
                f"inserted tokens must sit within the shared prefix: insert_at 0 .. {shared}, got {insert_at}"
            )
        at = shared if insert_at is None else insert_at
        x, group = prefix, 0
        for index, block in enumerate(blocks):
            if index in replace:
                x, groups = _replace_shared(x, groups, *replace[index], shared, at, group)
            if index in insert:
                extra = _one_row(insert[index], x.shape[-1], "tokens inserted into a shared prefix")
                x = torch.cat([x[:, :at], extra.to(x.dtype), x[:, at + group :]], dim=1)
                group = extra.shape[1]
            keys_values = block.keys_values(x)
            x, groups = block(x), [block(rest, keys_values) for rest in groups]
        inserted = x[:, at : at + group] if group else None
        return SharedPrefixRun(groups if grouped else groups[0], _without_group(x, at, group), inserted)

    def encode_shared_prefix(
        self,
        prefix_embeddings: torch.Tensor,
        suffix_embeddings: torch.Tensor,
        eot_index: torch.Tensor,
        **changes: Any,
    ) -> torch.Tensor:
        """Text features ``(n, embed_dim)`` of prompts that share their first positions, pooled at ``eot_index``.

        The prompts are ``prefix_embeddings`` ``(1, P, width)`` followed by each row of
        ``suffix_embeddings`` ``(n, S, width)``, token embeddings before positions; ``eot_index`` counts
        from the prompt's start and lies in the suffix. Equals :meth:`encode_embeddings` of the
        concatenated prompts; ``changes`` are :meth:`run_shared_prefix`'s ``insert``, ``insert_at`` and
        ``replace`` (replaced tokens after the prefix the same for every prompt). Each prompt is cut
        after its own end token: prompts of one length run as a group.
        """
        shared = prefix_embeddings.shape[1]
        if bool((eot_index < shared).any()):
            raise ValueError(f"every end token must lie after the {shared} shared positions; got {eot_index.tolist()}")
        # Sequences cut after their own end tokens, in groups of one length: no position after an end
        # token is computed (on a causal tower none of them changes the pooled features).
        own = (eot_index - shared + 1).to(suffix_embeddings.device)
        lengths = sorted(set(own.tolist()))
        rows = [torch.nonzero(own == length).flatten() for length in lengths]
        suffix = [self.embed(suffix_embeddings[index, :length], start=shared) for index, length in zip(rows, lengths)]
        run = self.run_shared_prefix(self.embed(prefix_embeddings), suffix, **changes)
        features = torch.cat([self.head(tokens, own[index] - 1) for tokens, index in zip(run.tokens, rows)])
        return features[torch.argsort(torch.cat(rows))]


def level_indices(layers: Sequence[int] | None, depth: int, unit: str = "levels") -> list[int]:
    """Requested levels of a tower made non-negative, in request order; all of them for None.

    ``unit`` names the levels in the error for an index out of range (``blocks``, ``stages``).
    """
    if layers is None:
        return list(range(depth))
    if not layers:
        raise ValueError(f"layers must name at least one of the tower's {unit}")
    bad = [i for i in layers if not -depth <= i < depth]
    if bad:
        raise ValueError(f"indices {bad} out of range for a tower of {depth} {unit}")
    return [i % depth for i in layers]


def _prefix_map(prefixes: Mapping[int, Prefix] | Sequence[Prefix | None] | None, depth: int) -> dict[int, Prefix]:
    if prefixes is None:
        return {}
    if isinstance(prefixes, Mapping):
        return dict(prefixes)
    if len(prefixes) > depth:
        raise ValueError(f"got prefixes for {len(prefixes)} blocks, the tower has {depth}")
    return {index: prefix for index, prefix in enumerate(prefixes) if prefix is not None}


def _batched(tokens: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    batch, _, width = x.shape
    if tokens.ndim != 3 or tokens.shape[-1] != width or tokens.shape[0] not in (1, batch):
        shape = tuple(tokens.shape)
        raise ValueError(f"{what} must have shape (B or 1, P, {width}) for a batch of {batch}; got {shape}")
    return tokens.to(x.dtype).expand(batch, -1, -1)


def _replace(x: torch.Tensor, start: int, new: torch.Tensor, at: int, group: int) -> torch.Tensor:
    new = _batched(new, x, "replacing tokens")
    end = start + new.shape[1]
    if start < 0 or end > x.shape[1] or (group and start < at + group and end > at):
        raise ValueError(f"replaced positions {start} .. {end - 1} must lie within the input, outside inserted tokens")
    return torch.cat([x[:, :start], new, x[:, end:]], dim=1)


def _one_row(tokens: torch.Tensor, width: int, what: str) -> torch.Tensor:
    if tokens.ndim != 3 or tokens.shape[0] != 1 or tokens.shape[-1] != width:
        raise ValueError(
            f"{what} must be the same for every sequence: shape (1, P, {width}); "
            f"got {tuple(tokens.shape)}"
        )
    return tokens


def _replace_shared(
    x: torch.Tensor, groups: list[torch.Tensor], start: int, new: torch.Tensor, shared: int, at: int, group: int
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Replace positions ``start ..`` of the concatenated sequence in the prefix ``x`` and the suffix groups."""
    end = start + new.shape[1]
    total = shared + min(rest.shape[1] for rest in groups)
    if start < 0 or end > total:
        raise ValueError(f"replaced positions {start} .. {end - 1} must lie within the {total} input positions")
    if start < shared:
        head = _one_row(new[:, : shared - start], x.shape[-1], "replacing tokens in a shared prefix")
        x = _replace(x, start if start < at else start + group, head, at, group)
    if end > shared:
        tail = new[:, max(shared - start, 0) :]
        if len(groups) > 1:
            tail = _one_row(tail, x.shape[-1], "replacing tokens after a prefix shared by suffix groups")
        groups = [_replace(rest, max(start - shared, 0), tail, 0, 0) for rest in groups]
    return x, groups


def _without_group(x: torch.Tensor, at: int, group: int) -> torch.Tensor:
    return torch.cat([x[:, :at], x[:, at + group :]], dim=1) if group else x
