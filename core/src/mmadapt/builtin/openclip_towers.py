"""open_clip's towers behind the tower contracts: its ViT, its other image towers, its text towers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import open_clip
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.tokenizer import HFTokenizer
from open_clip.transformer import CustomResidualAttentionBlock, VisionTransformer
from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
from torch import nn

from mmadapt.towers import (
    ImageTower,
    Prefix,
    TextTower,
    TokenImageTower,
    TokenTextTower,
    TransformerBlock,
    causal_mask,
    level_indices,
    multi_head_attention,
)

from .timm_vit import TimmViTTower

#: Maps a list of texts to token ids ``(n, context_length)``; open_clip's tokenizers are such callables.
Tokenizer = Callable[[list[str]], torch.Tensor]

#: Text pooling types whose pooled position is a token index, so prompt embeddings can be pooled too.
_INDEX_POOLING = ("argmax", "eos")


def _named(module: nn.Module, prefix: str) -> dict[str, nn.Parameter]:
    return {f"{prefix}{name}": param for name, param in module.named_parameters()}


class OpenClipImageTower(ImageTower):
    """Any open_clip image tower (ResNet, timm trunks that are not ViTs): pooled features and levels."""

    def __init__(self, visual: nn.Module, name: str, prefix: str = "model.visual.") -> None:
        """Wrap ``visual``, whose parameters are named ``prefix + name`` in the backbone."""
        self.visual = visual
        self.name = name
        self._prefix = prefix

    @property
    def width(self) -> int:
        """Channels of the last feature map (a ResNet's before attention pooling, a timm trunk's last level)."""
        visual = self.visual
        if isinstance(visual, ModifiedResNet):
            return visual.attnpool.k_proj.in_features
        return int(visual.trunk.feature_info[-1]["num_chs"])

    @property
    def module(self) -> nn.Module:
        """open_clip's ``model.visual``."""
        return self.visual

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """``model.visual(pixels)``, what open_clip's ``encode_image`` runs."""
        return self.visual(pixels)

    def intermediates(self, pixels: torch.Tensor, layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """The tower's own ``forward_intermediates``: ResNet stem and stages, timm trunk levels.

        ViT-like trunks with prefix tokens (EVA) give tokens with the prefix tokens first; ResNets,
        ConvNeXts, FastViTs and Swins give ``(B, C, H, W)`` maps.
        """
        visual = self.visual
        if isinstance(visual, ModifiedResNet):
            wanted = level_indices(layers, 5, "levels (stem and four stages)")
        else:
            wanted = level_indices(layers, len(visual.trunk.feature_info))
        taken = sorted(set(wanted))
        tokens = hasattr(getattr(visual, "trunk", None), "num_prefix_tokens")
        out = visual.forward_intermediates(
            pixels,
            indices=taken,
            stop_early=True,
            intermediates_only=True,
            output_fmt="NLC" if tokens else "NCHW",
            output_extra_tokens=tokens,
        )
        levels = out["image_intermediates"]
        if "image_intermediates_prefix" in out:
            levels = [torch.cat([prefix, x], dim=1) for prefix, x in zip(out["image_intermediates_prefix"], levels)]
        by_index = dict(zip(taken, levels))
        return [by_index[i] for i in wanted]

    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """``model.visual``'s parameters."""
        return _named(self.visual, self._prefix)


class OpenClipViTTower(TokenImageTower):
    """open_clip's ``VisionTransformer`` image tower."""

    def __init__(self, vit: VisionTransformer, name: str, prefix: str = "model.visual.") -> None:
        """Wrap ``vit``, whose parameters are named ``prefix + name`` in the backbone."""
        self.vit = vit
        self.name = name
        self._prefix = prefix
        self._blocks = [_OpenClipBlock(block, vit.transformer.batch_first) for block in vit.transformer.resblocks]

    @property
    def width(self) -> int:
        """Token width."""
        return self.vit.transformer.width

    @property
    def module(self) -> nn.Module:
        """The ``VisionTransformer``."""
        return self.vit

    @property
    def blocks(self) -> list[TransformerBlock]:
        """The residual attention blocks."""
        return self._blocks

    @property
    def num_prefix_tokens(self) -> int:
        """The class token."""
        return 1

    @property
    def projection(self) -> torch.Tensor | None:
        """``visual.proj``."""
        return self.vit.proj

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tower's own forward (its pooled output, where it also returns tokens, as CoCa's does)."""
        out = self.vit(pixels)
        return out[0] if isinstance(out, tuple) else out

    def intermediates(self, pixels: torch.Tensor, layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """open_clip's ``forward_intermediates``: each block's output tokens, the class token first."""
        wanted = level_indices(layers, self.depth, "blocks")
        taken = sorted(set(wanted))
        out = self.vit.forward_intermediates(
            pixels, indices=taken, stop_early=True, intermediates_only=True, output_fmt="NLC", output_extra_tokens=True
        )
        pairs = zip(out["image_intermediates_prefix"], out["image_intermediates"])
        levels = [torch.cat([prefix, x], dim=1) for prefix, x in pairs]
        by_index = dict(zip(taken, levels))
        return [by_index[i] for i in wanted]

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch embedding, class token, positional embedding, patch dropout (off in eval), ``ln_pre``."""
        # _embeds is exactly the part of VisionTransformer.forward before the blocks.
        return self.vit._embeds(pixels)

    def class_token(self) -> torch.Tensor:
        """``ln_pre(class_embedding)``."""
        return self.vit.ln_pre(self.vit.class_embedding)

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_post`` on every token (towers that normalise after attentional pooling have no such step)."""
        if self.vit.attn_pool is not None:
            raise NotImplementedError(f"{self.name}: the tower normalises after its attentional pooling")
        return self.vit.ln_post(tokens)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tower's own pooling (with ``ln_post``) and projection."""
        pooled, _ = self.vit._pool(tokens)
        return pooled @ self.vit.proj if self.vit.proj is not None else pooled

    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """``model.visual``'s parameters (class and positional embedding, conv1, ln_pre, blocks, ln_post, proj)."""
        return _named(self.vit, self._prefix)


class _OpenClipBlock(TransformerBlock):
    """An open_clip ``ResidualAttentionBlock`` (``nn.MultiheadAttention``) or custom-attention block."""

    def __init__(self, block: nn.Module, batch_first: bool, masked_by: nn.Module | None = None) -> None:
        self.block = block
        self.batch_first = batch_first
        # The text module whose attn_mask buffer (read on use: .to() replaces buffers) the block applies.
        self.masked_by = masked_by
        self.causal = masked_by is not None

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        if prefix is not None:
            return super().__call__(x, prefix)
        # The block itself, so an unprefixed pass is bit-identical to open_clip's forward.
        mask = self._mask(x.shape[1], x)
        if self.batch_first:
            return self.block(x, attn_mask=mask)
        return self.block(x.transpose(0, 1), attn_mask=mask).transpose(0, 1)

    def _mask(self, length: int, x: torch.Tensor) -> torch.Tensor | None:
        if self.masked_by is None:
            return None
        mask = self.masked_by.attn_mask
        if length <= mask.shape[0]:
            return mask[:length, :length]
        return causal_mask(length, like=x)

    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        return self.block.ln_1(x)

    def attention(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        block = self.block
        if isinstance(block, CustomResidualAttentionBlock):
            if prefix is not None:
                raise NotImplementedError(
                    "key/value prefixes need nn.MultiheadAttention blocks; this tower uses open_clip's custom "
                    "attention (qk-norm, scaled cosine or head scaling)"
                )
            return block.ls_1(block.ln_attn(block.attn(x, attn_mask=self._mask(x.shape[1], x))))
        attn: nn.MultiheadAttention = block.attn
        if prefix is None:
            tokens = x if attn.batch_first else x.transpose(0, 1)
            mask = self._mask(x.shape[1], x)
            mask = None if mask is None else mask.to(x.dtype)
            out = attn(tokens, tokens, tokens, need_weights=False, attn_mask=mask)[0]
            out = out if attn.batch_first else out.transpose(0, 1)
        else:
            q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            out = attn.out_proj(multi_head_attention(q, k, v, attn.num_heads, prefix, causal=self.causal))
        return block.ls_1(out)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        block = self.block
        return block.ls_2(block.mlp(block.ln_2(x)))

    def keys_values(self, x: torch.Tensor) -> Prefix:
        attn = self.block.attn
        if not isinstance(attn, nn.MultiheadAttention):
            raise NotImplementedError(f"keys and values of {type(attn).__name__} attention are not defined here")
        _, k, v = F.linear(self.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        return k, v


class OpenClipTextTower(TextTower):
    """Any open_clip text tower (CoCa's, a Hugging Face model): tokenizer and text features."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, name: str) -> None:
        """The text side of the open_clip ``model``, tokenized by ``tokenizer``."""
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self._vocabulary: list[str] | None = None

    @property
    def context_length(self) -> int:
        """Number of text positions (77 for CLIP)."""
        return int(self.model.context_length)

    @property
    def module(self) -> nn.Module:
        """``model.text``, or the CLIP's own text transformer."""
        text = getattr(self.model, "text", None)
        return text if text is not None else self.model.transformer

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids ``(n, context_length)`` on the model's device."""
        return self.tokenizer(list(texts)).to(self.model.logit_scale.device)

    def vocabulary(self) -> list[str]:
        """Each token id decoded on its own by the model's tokenizer (CLIP's BPE or a Hugging Face one)."""
        return list(self._tokenizer_vocabulary())

    @property
    def vocab_size(self) -> int:
        """Number of token ids of the tokenizer."""
        return len(self._tokenizer_vocabulary())

    def _tokenizer_vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            tokenizer = self.tokenizer
            if isinstance(tokenizer, open_clip.SimpleTokenizer):
                decode, size = tokenizer.decode, len(tokenizer.encoder)
            elif isinstance(tokenizer, HFTokenizer):
                decode, size = tokenizer.tokenizer.decode, len(tokenizer.tokenizer)
            else:
                kind = type(tokenizer).__name__
                raise NotImplementedError(
                    f"{self.name}: a vocabulary needs open_clip's SimpleTokenizer or HFTokenizer, got {kind}"
                )
            self._vocabulary = [decode([token]).strip() for token in range(size)]
        return self._vocabulary

    def encode(self, token_ids: torch.Tensor) -> torch.Tensor:
        """open_clip's own ``encode_text``."""
        return self.model.encode_text(token_ids)

    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """The text side's parameters: ``model.text``'s, or the CLIP's outside the image tower and temperature."""
        text = getattr(self.model, "text", None)
        if text is not None:
            return _named(text, "model.text.")
        shared = ("visual.", "logit_scale", "logit_bias")
        return {f"model.{n}": p for n, p in self.model.named_parameters() if not n.startswith(shared)}


class OpenClipTokenTextTower(OpenClipTextTower, TokenTextTower):
    """open_clip's text transformer pooled at the end token (CLIP's; MobileCLIP's bidirectional one)."""

    def __init__(self, model: nn.Module, tokenizer: Tokenizer, name: str) -> None:
        """The text transformer of ``model`` (the CLIP itself or its ``model.text``)."""
        super().__init__(model, tokenizer, name)
        self.text = text_transformer(model)
        if self.text is None:
            raise TypeError(f"{name}: the text tower is not open_clip's text transformer pooled at its end token")
        self._pool_type: str = _pool_type(self.text)
        self._eos_id: int | None = getattr(self.text, "text_eos_id", getattr(self.text, "eos_id", None))
        mask = self.text.attn_mask if isinstance(self.text.attn_mask, torch.Tensor) else None
        masked_by = self.text if mask is not None else None
        transformer = self.text.transformer
        self._blocks = [_OpenClipBlock(block, transformer.batch_first, masked_by) for block in transformer.resblocks]
        self._causal = _attends_causally(mask)

    @property
    def causal(self) -> bool:
        """Read from the tower: a causal mask and pooling at the end token."""
        return self._causal

    @property
    def width(self) -> int:
        """Width of the text transformer."""
        return self.text.transformer.width

    @property
    def blocks(self) -> list[TransformerBlock]:
        """The residual attention blocks, each applying the causal mask itself where the tower has one."""
        return self._blocks

    def token_embedding(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``(n, L, width)`` of token ids."""
        return self.text.token_embedding(token_ids)

    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Where the model pools text features: the highest id (CLIP's end token) or the first ``eos_id``."""
        if self._pool_type == "argmax":
            return token_ids.argmax(dim=-1)
        return (token_ids == self._eos_id).int().argmax(dim=-1)

    def embed(self, embeddings: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Embeddings cast to the transformer's dtype plus positional embeddings ``start .. start + L - 1``."""
        end = start + embeddings.shape[1]
        if start < 0 or end > self.context_length:
            raise ValueError(
                f"{self.name}: text positions {start} .. {end - 1} given, the model has 0 .. {self.context_length - 1}"
            )
        dtype = self.text.transformer.get_cast_dtype()
        return embeddings.to(dtype) + self.text.positional_embedding[start:end].to(dtype)

    @property
    def shares_prefixes(self) -> bool:
        """Causal, and every block is open_clip's standard one (``nn.MultiheadAttention``, which takes prefixes)."""
        return self._causal and all(
            not isinstance(block, CustomResidualAttentionBlock) and isinstance(block.attn, nn.MultiheadAttention)
            for block in self.text.transformer.resblocks
        )

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_final``."""
        return self.text.ln_final(tokens)

    def head(self, tokens: torch.Tensor, eot_index: torch.Tensor) -> torch.Tensor:
        """``ln_final``, the token at ``eot_index``, ``text_projection``."""
        x = self.final_norm(tokens)
        x = x[torch.arange(x.shape[0], device=x.device), eot_index.to(x.device)]
        projection = self.text.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, nn.Linear) else x @ projection


def text_transformer(model: nn.Module) -> nn.Module | None:
    """The module holding open_clip's text transformer parts, if it pools at an end token with no extras.

    ``model`` is the CLIP itself or a CustomTextCLIP (``model.text``); CoCa's appended class token,
    padding masks and Hugging Face towers give None.
    """
    text = getattr(model, "text", model)
    custom = getattr(text, "cls_emb", None) is not None or getattr(text, "use_pad_mask", False)
    if not isinstance(getattr(text, "token_embedding", None), nn.Embedding) or custom:
        return None
    return text if _pool_type(text) in _INDEX_POOLING else None


def _pool_type(text: nn.Module) -> str | None:
    return getattr(text, "text_pool_type", getattr(text, "pool_type", None))


def _attends_causally(mask: torch.Tensor | None) -> bool:
    """Whether ``mask`` hides exactly every later position."""
    if mask is None or mask.ndim != 2:
        return False
    future = torch.ones_like(mask, dtype=torch.bool).triu(1)
    return bool(torch.isneginf(mask[future]).all() and (mask[~future] == 0).all())


def image_tower(visual: nn.Module, name: str) -> ImageTower:
    """The tower type open_clip's ``model.visual`` supports: a token tower for ViTs, pooled otherwise."""
    if isinstance(visual, VisionTransformer):
        return OpenClipViTTower(visual, name)
    if isinstance(visual, TimmModel) and isinstance(visual.trunk, TimmVisionTransformer):
        return TimmViTTower(visual.trunk, name, outer=visual, prefix="model.visual.")
    if isinstance(visual, (ModifiedResNet, TimmModel)):
        return OpenClipImageTower(visual, name)
    raise TypeError(f"{name}: unknown open_clip image tower {type(visual).__name__}")
