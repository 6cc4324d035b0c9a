"""``TimmBackbone``: an image-only timm ViT behind the ``Backbone`` contract."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING

import timm
import torch
import torch.nn.functional as F
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer, checkpoint_filter_fn
from torch import nn

from mmadapt.backbone import Backbone, Prefix, Preprocessing, VisionBlock, level_indices, multi_head_attention
from mmadapt.errors import UserError

from .hub import download_failure, hub_offline_when_unreachable, offline_help

if TYPE_CHECKING:
    # Only for annotations: backbones.py imports this module lazily, and not the other way round.
    from .config import TimmConfig


class TimmBackbone(Backbone):
    """A timm ``VisionTransformer``: image features are its pooled pre-logits features.

    ``embed_dim`` is that feature's width; there is no text tower and no projection.
    """

    has_text = False

    def __init__(self, model: VisionTransformer, name: str = "timm") -> None:
        """Wrap an already built timm ViT; freezes it and puts it in eval mode."""
        super().__init__()
        if not isinstance(model, VisionTransformer):
            raise TypeError(f"TimmBackbone wraps timm VisionTransformer models, got {type(model).__name__}")
        self.model = model
        self.name = name
        self._preprocessing = _preprocessing_of(model)
        self.freeze_pretrained()

    @classmethod
    def from_config(cls, config: TimmConfig) -> TimmBackbone:
        """Build the ViT named by a recipe section; user mistakes raise ``UserError``."""
        arch = _checked_arch(config)
        kwargs = {"num_classes": 0, "cache_dir": config.cache_dir}
        if config.img_size is not None:
            kwargs["img_size"] = config.img_size
        download = config.checkpoint_path is None and config.pretrained is not False
        with hub_offline_when_unreachable() if download else nullcontext(True) as hub_reached:
            try:
                model = timm.create_model(arch, pretrained=download, **kwargs)
            except Exception as exc:
                reason = download_failure(exc) if download else None
                if reason is None:
                    raise
                raise UserError("timm: " + offline_help(f"the pretrained weights of {arch!r}", reason,
                                                        "backbone.checkpoint_path", hub_reached)) from exc
        if not isinstance(model, VisionTransformer):
            raise UserError(
                f"timm: {arch!r} is a {type(model).__name__}; the timm backbone supports ViTs "
                "(timm VisionTransformer models such as vit_base_patch16_224 or deit_small_patch16_224)"
            )
        if config.checkpoint_path is not None:
            _load_checkpoint(model, os.path.expanduser(config.checkpoint_path))
        return cls(model, name=f"timm {arch}")

    # -- shared ---------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the pooled pre-logits feature."""
        return int(getattr(self.model, "head_hidden_size", self.model.num_features))

    @property
    def vision_width(self) -> int:
        """Token width."""
        return int(self.model.embed_dim)

    @property
    def preprocessing(self) -> Preprocessing:
        """The model's input size; mean, std, interpolation and crop from timm's data config."""
        return self._preprocessing

    @property
    def logit_scale(self) -> torch.Tensor:
        """An image-only model has no temperature of its own: CLIP's 100, so cosine heads behave alike."""
        return torch.tensor(100.0)

    # -- image tower ----------------------------------------------------------------------------
    def towers(self) -> dict[str, nn.Module]:
        """The one frozen tower: the whole timm model as ``vision``."""
        return {"vision": self.model}

    def encode_image(self, pixels: torch.Tensor, normalize: bool = False, preprocess: bool = False) -> torch.Tensor:
        """Pooled pre-logits features ``(B, embed_dim)``."""
        pixels = self.prepare_pixels(pixels) if preprocess else pixels
        features = self.model.forward_head(self.model.forward_features(pixels), pre_logits=True)
        return F.normalize(features, dim=-1) if normalize else features

    def image_intermediates(
        self, pixels: torch.Tensor, layers: Sequence[int] | None = None, preprocess: bool = False
    ) -> list[torch.Tensor]:
        """Each requested block's output tokens, prefix tokens first, from timm's ``forward_intermediates``."""
        wanted = level_indices(layers, len(self.model.blocks), "blocks")
        taken = sorted(set(wanted))
        levels = self.model.forward_intermediates(
            self.prepare_pixels(pixels) if preprocess else pixels,
            indices=taken,
            return_prefix_tokens=True,
            stop_early=True,
            output_fmt="NLC",
            intermediates_only=True,
        )
        # Without prefix tokens timm returns the patch tokens alone instead of (patches, prefix) pairs.
        if self.num_prefix_tokens:
            levels = [torch.cat([prefix, patches], dim=1) for patches, prefix in levels]
        by_index = dict(zip(taken, levels))
        return [by_index[i] for i in wanted]

    @property
    def num_prefix_tokens(self) -> int:
        """Class token (if any) and register tokens."""
        return int(self.model.num_prefix_tokens)

    @property
    def image_projection(self) -> torch.Tensor | None:
        """None: the pooled tokens are the features."""
        return None

    def image_token_embeddings(self, pixels: torch.Tensor, preprocess: bool = False) -> torch.Tensor:
        """Patch embedding, prefix tokens, positional embedding, patch dropout (off in eval), ``norm_pre``."""
        return vit_token_embeddings(self.model, self.prepare_pixels(pixels) if preprocess else pixels)

    def image_class_token(self) -> torch.Tensor:
        """``norm_pre(cls_token)``; ``NotImplementedError`` for a ViT built without a class token."""
        return vit_class_token(self.model, self.name)

    def vision_blocks(self) -> list[VisionBlock]:
        """The transformer blocks."""
        return vit_blocks(self.model)

    def vision_final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """timm's ``norm`` (an identity for models that normalise after pooling, with ``fc_norm``)."""
        return self.model.norm(tokens)

    def pool_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm, then timm's own pooling head up to the pre-logits."""
        return self.model.forward_head(self.model.norm(tokens), pre_logits=True)


def vit_class_token(model: VisionTransformer, name: str) -> torch.Tensor:
    """A timm ``VisionTransformer``'s class token through ``norm_pre``, as ``(width,)``."""
    if model.cls_token is None:
        raise NotImplementedError(f"{name}: image_class_token is not supported: the ViT has no class token")
    return model.norm_pre(model.cls_token.reshape(-1))


def vit_token_embeddings(model: VisionTransformer, pixels: torch.Tensor) -> torch.Tensor:
    """The tokens a timm ``VisionTransformer`` feeds its first block, as its ``forward_features`` makes them."""
    x = model.patch_embed(pixels)
    # _pos_embed is how timm's own forward_features adds prefix tokens and positions.
    return model.norm_pre(model.patch_drop(model._pos_embed(x)))


def vit_blocks(model: VisionTransformer) -> list[VisionBlock]:
    """The blocks of a timm ``VisionTransformer`` behind the ``VisionBlock`` interface."""
    return [_TimmBlock(block) for block in model.blocks]


class _TimmBlock(VisionBlock):
    """A timm ViT ``Block``; other block types run whole but cannot be split or prefixed."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        if prefix is not None:
            return super().__call__(x, prefix)
        # The block itself, so an unprompted pass is bit-identical to timm's forward.
        return self.block(x)

    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        return self._standard().norm1(x)

    def attention(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        block = self._standard()
        out = block.attn(x) if prefix is None else _prefixed_attention(block.attn, x, prefix)
        return block.drop_path1(block.ls1(out))

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        block = self._standard()
        return block.drop_path2(block.ls2(block.mlp(block.norm2(x))))

    def _standard(self) -> Block:
        # Subclasses and other block types (post-norm, parallel) compose their parts differently.
        if type(self.block) is not Block:
            raise NotImplementedError(
                f"splitting a {type(self.block).__name__} into norm/attention/MLP steps is not supported; "
                "only timm's standard pre-norm Block"
            )
        return self.block


def _prefixed_attention(attn: nn.Module, x: torch.Tensor, prefix: Prefix) -> torch.Tensor:
    """timm ``Attention.forward`` with prefix keys and values appended after the qkv projection."""
    if type(attn) is not Attention or not isinstance(attn.q_norm, nn.Identity):
        # With qk-norm it is undefined whether prefix keys are in normalised space.
        raise NotImplementedError(
            f"key/value prefixes need timm's plain Attention without qk-norm; got {type(attn).__name__}"
        )
    gate = attn.gate(x).sigmoid() if attn.gate is not None else None
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    out = attn.norm(multi_head_attention(q, k, v, attn.num_heads, prefix))
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out))


def _preprocessing_of(model: VisionTransformer) -> Preprocessing:
    data = timm.data.resolve_model_data_config(model)
    # The data config keeps the pretrained input size; img_size overrides live in the patch embedding.
    height, width = model.patch_embed.img_size
    if height != width:
        raise NotImplementedError(f"non-square ViT inputs ({height}x{width}) are not supported")
    return Preprocessing(
        size=int(height),
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
        interpolation=str(data.get("interpolation", "bicubic")),
        crop_pct=float(data.get("crop_pct", 1.0)),
    )


def _checked_arch(config: TimmConfig) -> str:
    """The full model name (with a tag when ``pretrained`` names one), after checking it exists."""
    base, _, tag = config.arch.partition(".")
    if not timm.is_model(base):
        known = timm.list_models()
        close = difflib.get_close_matches(base, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise UserError(f"timm: unknown arch {base!r}{hint}; see python -c 'import timm; print(timm.list_models())'")
    if isinstance(config.pretrained, str):
        tag = config.pretrained
    if tag and config.checkpoint_path is None:
        tags = [name.partition(".")[2] for name in timm.list_pretrained(f"{base}.*")]
        if tag not in tags:
            close = difflib.get_close_matches(tag, tags, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"timm: {base} has no pretrained tag {tag!r}{hint}. Tags: {', '.join(tags) or 'none'}")
    return f"{base}.{tag}" if tag else base


def _load_checkpoint(model: VisionTransformer, path: str) -> None:
    """Load a local checkpoint (safetensors or ``torch.load(weights_only=True)``) without its classifier."""
    if not os.path.isfile(path):
        raise UserError(f"timm: backbone.checkpoint_path {path} does not exist")
    try:
        state = timm.models.load_state_dict(path, weights_only=True)
        # timm's filter converts foreign layouts and resamples positional embeddings to img_size.
        state = checkpoint_filter_fn(state, model)
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise UserError(f"timm: cannot load checkpoint {path} into {type(model).__name__}: {exc}") from exc
