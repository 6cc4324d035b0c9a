"""The Backbone contract: what adapters may rely on from a pretrained model, for any width or depth."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

#: Key and value tokens ``(B or 1, P, width)`` appended to one attention layer's keys and values.
Prefix = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for the image tower."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Resampling the model was trained with for its test transform (``bicubic``, ``bilinear`` ...).
    interpolation: str = "bicubic"
    #: Fraction of the resized image the test transform keeps as centre crop (1.0 for CLIP).
    crop_pct: float = 1.0


class VisionBlock(ABC):
    """One frozen transformer block of an image tower, split into the steps methods recombine.

    Tokens are ``(B, T, vision_width)``, batch first, whatever layout the wrapped model uses.
    ``block(x)`` runs the whole block; ``block(x, prefix)`` adds key/value prefix tokens to its
    attention. The parts let a method run its own token stream through the frozen weights
    (MULTI-LANE): ``x + attention(norm1(x))`` then ``x + feed_forward(x)`` is the block.
    """

    @abstractmethod
    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        """The block's first norm (LN1), applied before attention."""

    @abstractmethod
    def attention(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        """The attention branch on already normalised tokens: what the block adds to the residual stream.

        Self-attention with the frozen qkv and output projections (and layer scale, where the model
        has one). ``prefix = (keys, values)``, each ``(B or 1, P, width)``, is appended to the
        projected keys and values (prefix tuning), so queries also attend to the prefix.
        """

    @abstractmethod
    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP branch on the residual stream (second norm, MLP, layer scale) before it is added."""

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        """Run the block on ``x``, optionally with a key/value prefix in its attention."""
        x = x + self.attention(self.norm1(x), prefix)
        return x + self.feed_forward(x)


def multi_head_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int, prefix: Prefix | None = None
) -> torch.Tensor:
    """Scaled dot-product attention of projected ``(B, T, width)`` queries, keys and values.

    ``prefix`` keys and values ``(B or 1, P, width)`` are appended after the projections; the result
    is ``(B, T, width)`` with heads merged, before the output projection.
    """
    batch, length, width = q.shape
    if prefix is not None:
        keys, values = prefix
        for name, tensor in (("keys", keys), ("values", values)):
            if tensor.ndim != 3 or tensor.shape[-1] != width or tensor.shape[0] not in (1, batch):
                raise ValueError(
                    f"prefix {name} must have shape (B or 1, P, {width}) for a batch of {batch}; "
                    f"got {tuple(tensor.shape)}"
                )
        k = torch.cat([k, keys.to(k.dtype).expand(batch, -1, -1)], dim=1)
        v = torch.cat([v, values.to(v.dtype).expand(batch, -1, -1)], dim=1)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, t.shape[1], num_heads, width // num_heads).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
    return out.transpose(1, 2).reshape(batch, length, width)


class Backbone(nn.Module):
    """A frozen pretrained model and the operations methods need from it.

    Subclasses implement the image side always and the text side when the model has a text tower
    (``has_text`` is then True). Operations a model cannot support raise ``NotImplementedError`` with a
    message naming the backbone and the operation. All parameters are frozen on construction; adapters
    that train backbone weights (LoRA) re-enable what they own.

    Transformer image towers implement five primitives (``image_token_embeddings``,
    ``vision_blocks``, ``vision_final_norm``, ``pool_image_tokens``, ``num_prefix_tokens``); the
    base class builds ``image_tokens`` and ``encode_image_prompted`` from them.
    """

    #: Whether the model has a text tower (CLIP) or is image-only (a timm ViT).
    has_text: bool = False
    #: Shown in error messages; subclasses set e.g. ``"openclip ViT-B-16"``.
    name: str = "backbone"

    def freeze_pretrained(self) -> None:
        """Freeze every current parameter and keep every current module in eval mode from now on.

        Subclasses call this at the end of ``__init__``. Modules added later (LoRA layers an adapter
        injects) are not affected and follow ``train()`` as usual.
        """
        self.requires_grad_(False)
        self.eval()
        # A plain tuple, so the modules are remembered without being registered a second time.
        self._pretrained_modules = tuple(m for m in self.modules() if m is not self)

    def train(self, mode: bool = True) -> Backbone:
        """Set the training mode, keeping the pretrained modules in eval mode.

        A frozen model must not change with the adapter's mode: batch-norm statistics would drift
        and patch dropout or stochastic depth would make features random.
        """
        super().train(mode)
        for module in getattr(self, "_pretrained_modules", ()):
            module.training = False
        return self

    def towers(self) -> dict[str, nn.Module]:
        """The model's towers by name (``vision``, and ``text`` when there is one), e.g. for LoRA."""
        raise NotImplementedError(f"{self.name} does not name its towers")

    def _unsupported(self, operation: str, reason: str) -> NotImplementedError:
        return NotImplementedError(f"{self.name}: {operation} is not supported: {reason}")

    def require_text_tower(self, needed_by: str, fix: str) -> None:
        """Raise a ``UserError`` "<needed_by>; backbone <name> has no text tower: <fix>" unless ``has_text``.

        Adapters call it first in ``__init__``, so a recipe pairing a text method with an image-only
        model fails with the recipe key to change rather than deep inside a text pass.
        """
        if not self.has_text:
            raise UserError(f"{needed_by}; backbone {self.name} has no text tower: {fix}")

    def patch_token_count(self, needed_by: str, fix: str) -> int:
        """N, the patch tokens of the ViT image tower at its input size (prefix tokens not counted).

        Raises a ``UserError`` "<needed_by>; backbone <name> has no ViT image tower (...): <fix>" when
        the tower does not implement the transformer primitives (a ResNet, say).
        """
        size = self.preprocessing.size
        height, width = (size, size) if isinstance(size, int) else size
        reference = next(self.parameters())
        pixels = torch.zeros(1, 3, height, width, device=reference.device, dtype=reference.dtype)
        try:
            with torch.no_grad():
                tokens = self.image_token_embeddings(pixels)
        except NotImplementedError as exc:
            raise UserError(f"{needed_by}; backbone {self.name} has no ViT image tower ({exc}): {fix}") from None
        return tokens.shape[1] - self.num_prefix_tokens

    # -- shared ---------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text space (or of the image feature for image-only models)."""
        raise NotImplementedError

    @property
    def vision_width(self) -> int:
        """Width of the image tower's tokens."""
        raise NotImplementedError

    @property
    def preprocessing(self) -> Preprocessing:
        """Input size and normalisation of the image tower."""
        raise NotImplementedError

    @property
    def logit_scale(self) -> torch.Tensor:
        """The model's (frozen) temperature, already exponentiated; 100 for OpenAI CLIP."""
        raise NotImplementedError

    def prepare_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Resize RGB pixels in [0, 1] of any size to the tower's input and normalise them, in the graph.

        Bilinear resize of the whole image to ``size x size`` (no crop, no antialiasing, as CLIP-LIT
        does), then ``(x - mean) / std``. Differentiable with respect to ``pixels``.
        """
        prep = self.preprocessing
        if pixels.shape[-2:] != (prep.size, prep.size):
            pixels = F.interpolate(pixels, size=(prep.size, prep.size), mode="bilinear", align_corners=False)
        mean = pixels.new_tensor(prep.mean).view(1, -1, 1, 1)
        std = pixels.new_tensor(prep.std).view(1, -1, 1, 1)
        return (pixels - mean) / std

    # -- text tower -----------------------------------------------------------------------------
    @property
    def text_width(self) -> int:
        """Width of the text tower's token embeddings."""
        raise self._unsupported("text_width", "the model has no text tower")

    @property
    def context_length(self) -> int:
        """Number of positions of the text tower (77 for CLIP)."""
        raise self._unsupported("context_length", "the model has no text tower")

    @property
    def causal_text(self) -> bool:
        """Whether the text features pooled at the end token ignore every position after it.

        True when the text tower attends causally and pools at the end token, so cutting a sequence
        after its longest end token gives exactly the same features (prompt learners use this to
        save compute). False unless the backbone knows it: a bidirectional tower (MobileCLIP, Hugging
        Face text models) or one pooling elsewhere (CoCa's appended class token) sees the padding.
        """
        return False

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (n, context_length) with start and end tokens and padding."""
        raise self._unsupported("tokenize", "the model has no text tower")

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer produces (49,408 for CLIP's BPE)."""
        return len(self.vocabulary())

    def vocabulary(self) -> list[str]:
        """Every token id's text: entry ``i`` is token ``i`` decoded on its own, surrounding spaces stripped.

        Special tokens keep their markers (``<start_of_text>``); different ids may decode to the same
        text (a word and the same letters as a word piece). Used to rank single tokens as prompts.
        """
        raise self._unsupported("vocabulary", "the model has no text tower")

    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of each sequence's end token, the position text features are pooled from."""
        raise self._unsupported("eot_index", "the model has no text tower")

    def token_embedding(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings (n, L, text_width) of token ids, before the positional embedding."""
        raise self._unsupported("token_embedding", "the model has no text tower")

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Text features (n, embed_dim) of token ids."""
        raise self._unsupported("encode_text", "the model has no text tower")

    def encode_text_embeddings(
        self, embeddings: torch.Tensor, eot_index: torch.Tensor, normalize: bool = False
    ) -> torch.Tensor:
        """Text features of prompt embeddings (n, L, text_width), L <= context_length.

        Adds the positional embedding, runs the causal transformer and pools at ``eot_index``.
        Sequences shorter than ``context_length`` are exact whenever every ``eot_index < L``.
        """
        raise self._unsupported("encode_text_embeddings", "the model has no text tower")

    # -- image tower ----------------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, normalize: bool = False, preprocess: bool = False) -> torch.Tensor:
        """Image features (B, embed_dim); differentiable with respect to ``pixels``.

        With ``preprocess=True`` pixels are RGB in [0, 1] of any size and are resized and normalised
        inside the graph (``prepare_pixels``; image-enhancement methods need gradients through it).
        """
        raise NotImplementedError

    def image_intermediates(
        self, pixels: torch.Tensor, layers: Sequence[int] | None = None, preprocess: bool = False
    ) -> list[torch.Tensor]:
        """The image tower's intermediate features, one per requested level, in request order.

        Transformer towers have a level per block: its output tokens ``(B, T, width)`` with the prefix
        (class, register) tokens first, the raw residual stream without the final norm (so earlier
        blocks equal ``image_tokens``). Convolutional towers have a level per stage: feature maps
        ``(B, C, H, W)``; a CLIP ResNet has five, the stem output (after its pooling), then
        ``layer1`` ... ``layer4``. Levels count from 0 (negative from the end); None takes them all.
        Levels after the deepest requested one are not run. Differentiable with respect to ``pixels``.
        """
        raise self._unsupported("image_intermediates", "the backbone does not expose its image tower's levels")

    # Transformer image towers: primitives ------------------------------------------------------
    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the patch tokens: 1 (the class token) for CLIP; timm ViTs may add registers."""
        raise self._unsupported("image tokens", "the image tower is not a ViT")

    @property
    def image_projection(self) -> torch.Tensor | None:
        """The frozen ``(vision_width, embed_dim)`` projection after pooling, or None if there is none."""
        raise self._unsupported("image_projection", "the image tower is not a ViT")

    def image_token_embeddings(self, pixels: torch.Tensor, preprocess: bool = False) -> torch.Tensor:
        """Tokens ``(B, num_prefix_tokens + N, vision_width)`` entering the first block.

        Patch embedding, prefix tokens, positional embedding and the pre-norm the model has.
        """
        raise self._unsupported("image_token_embeddings", "the image tower is not a ViT")

    def image_class_token(self) -> torch.Tensor:
        """The tower's pretrained class token ``(vision_width,)`` through its pre-norm, with no positional embedding.

        The start of a token stream of its own next to the image's (a MULTI-LANE lane); the class
        token inside ``image_token_embeddings`` carries its positional embedding as well.
        """
        raise self._unsupported("image_class_token", "the image tower is not a ViT")

    def vision_blocks(self) -> list[VisionBlock]:
        """The frozen transformer blocks of the image tower, first to last."""
        raise self._unsupported("vision_blocks", "the image tower is not a ViT")

    def vision_final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tower's final norm applied token-wise (CLIP's ``ln_post``)."""
        raise self._unsupported("vision_final_norm", "the image tower is not a ViT")

    def pool_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Image features ``(B, embed_dim)`` from the last block's output: final norm, pooling, projection."""
        raise self._unsupported("pool_image_tokens", "the image tower is not a ViT")

    # Transformer image towers: operations built on the primitives ------------------------------
    def image_tokens(
        self,
        pixels: torch.Tensor,
        layers: Sequence[int] | None = None,
        preprocess: bool = False,
        patch_offsets: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Tokens (B, num_prefix_tokens + N, vision_width) after each requested block, in request order.

        Block indices count from 0 (negative ones from the end); the default is the last block. The
        last block's entry has the final norm applied (the tokens CLIP projects), earlier blocks'
        entries are the raw residual stream. Blocks after the deepest requested one are not run.
        ``patch_offsets`` are added to the patch tokens entering the first block, as in
        ``encode_image_prompted``.
        """
        blocks = self.vision_blocks()
        wanted = _block_indices(layers, len(blocks))
        x = self._offset_patches(self.image_token_embeddings(pixels, preprocess=preprocess), patch_offsets)
        taken: dict[int, torch.Tensor] = {}
        for index, block in enumerate(blocks[: max(wanted) + 1]):
            x = block(x)
            if index in wanted:
                taken[index] = x
        last = len(blocks) - 1
        if last in taken:
            taken[last] = self.vision_final_norm(taken[last])
        return [taken[i] for i in wanted]

    def encode_image_prompted(
        self,
        pixels: torch.Tensor,
        prompts: torch.Tensor | None = None,
        prefixes: Sequence[Prefix | None] | None = None,
        normalize: bool = False,
        preprocess: bool = False,
        patch_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image features with extra tokens, key/value prefixes or patch offsets in the vision blocks.

        ``prompts`` (B or 1, P, vision_width) are inserted after the prefix (class) tokens, after the
        positional embedding and pre-norm, before the first block (VPT-shallow); they are dropped
        again before pooling. ``prefixes[i]`` = (keys, values) of shape (B or 1, P_i, vision_width)
        is concatenated to the keys and values of block ``i`` (prefix tuning); ``None`` or a list
        shorter than the depth leaves blocks unchanged. ``patch_offsets`` (N, vision_width) or
        (B, N, vision_width) are added to the N patch tokens at the same place as the prompts (EPT's
        visual offsets); prefix tokens and prompts get none. With none of them, this equals
        ``encode_image``.
        """
        blocks = self.vision_blocks()
        prefixes = list(prefixes or [])
        if len(prefixes) > len(blocks):
            raise ValueError(f"{self.name}: got prefixes for {len(prefixes)} blocks, the image tower has {len(blocks)}")
        prefixes += [None] * (len(blocks) - len(prefixes))
        x = self._offset_patches(self.image_token_embeddings(pixels, preprocess=preprocess), patch_offsets)
        n_prompts = 0
        if prompts is not None:
            x, n_prompts = self._insert_prompts(x, prompts)
        for block, prefix in zip(blocks, prefixes):
            x = block(x, prefix)
        if n_prompts:
            start = self.num_prefix_tokens
            x = torch.cat([x[:, :start], x[:, start + n_prompts :]], dim=1)
        features = self.pool_image_tokens(x)
        return F.normalize(features, dim=-1) if normalize else features

    def _offset_patches(self, x: torch.Tensor, offsets: torch.Tensor | None) -> torch.Tensor:
        if offsets is None:
            return x
        batch, length, width = x.shape
        start = self.num_prefix_tokens
        patches = length - start
        batched = offsets.ndim == 3 and offsets.shape[0] in (1, batch)
        if offsets.shape[-2:] != (patches, width) or not (offsets.ndim == 2 or batched):
            raise ValueError(
                f"{self.name}: patch_offsets must have shape ({patches}, {width}) or (B, {patches}, {width}) "
                f"for a batch of {batch}; got {tuple(offsets.shape)}"
            )
        return torch.cat([x[:, :start], x[:, start:] + offsets.to(x.dtype)], dim=1)

    def _insert_prompts(self, x: torch.Tensor, prompts: torch.Tensor) -> tuple[torch.Tensor, int]:
        batch, _, width = x.shape
        if prompts.ndim != 3 or prompts.shape[-1] != width or prompts.shape[0] not in (1, batch):
            raise ValueError(
                f"{self.name}: prompts must have shape (B or 1, P, {width}) for a batch of {batch}; "
                f"got {tuple(prompts.shape)}"
            )
        start = self.num_prefix_tokens
        prompts = prompts.to(x.dtype).expand(batch, -1, -1)
        return torch.cat([x[:, :start], prompts, x[:, start:]], dim=1), prompts.shape[1]


def _block_indices(layers: Sequence[int] | None, depth: int) -> list[int]:
    """Requested block indices made non-negative; the last block when none are given."""
    return level_indices([depth - 1] if layers is None else layers, depth, "blocks")


def level_indices(layers: Sequence[int] | None, depth: int, unit: str = "levels") -> list[int]:
    """Requested levels of an image tower made non-negative, in request order; all of them for None.

    ``unit`` names the levels in the error for an index out of range (``blocks``, ``stages``).
    """
    if layers is None:
        return list(range(depth))
    if not layers:
        raise ValueError(f"layers must name at least one of the image tower's {unit}")
    bad = [i for i in layers if not -depth <= i < depth]
    if bad:
        raise ValueError(f"indices {bad} out of range for an image tower of {depth} {unit}")
    return [i % depth for i in layers]
