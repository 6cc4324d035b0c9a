"""timm ViTs: ``TimmViTTower`` (also serving open_clip's timm trunks) and ``TimmBackbone``, an image-only timm ViT."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING

import timm
import torch
from timm.layers import Attention
from timm.models.vision_transformer import Block, VisionTransformer, checkpoint_filter_fn
from torch import nn

from mmadapt.backbone import Backbone, Preprocessing
from mmadapt.errors import UserError
from mmadapt.towers import Prefix, TokenImageTower, TransformerBlock, level_indices, multi_head_attention

from ..hub import download_failure, hub_offline_when_unreachable, offline_help

if TYPE_CHECKING:
    # Only for annotations: backbones.py imports this module lazily, and not the other way round.
    from .config import TimmConfig


class TimmBackbone(Backbone):
    """A timm ``VisionTransformer``: image features are its pooled pre-logits features.

    ``embed_dim`` is that feature's width; there is no text tower and no projection.
    """

    def __init__(self, model: VisionTransformer, name: str = "timm") -> None:
        """Wrap an already built timm ViT; freezes it and puts it in eval mode."""
        if not isinstance(model, VisionTransformer):
            raise TypeError(f"TimmBackbone wraps timm VisionTransformer models, got {type(model).__name__}")
        width = int(getattr(model, "head_hidden_size", model.num_features))
        super().__init__(TimmViTTower(model, f"{name} image tower"), None, _preprocessing_of(model), width, name)
        self.model = model
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

    @property
    def logit_scale(self) -> torch.Tensor:
        """An image-only model has no temperature of its own: CLIP's 100, so cosine heads behave alike."""
        return torch.tensor(100.0)


class TimmViTTower(TokenImageTower):
    """A timm ``VisionTransformer``, on its own (pooled pre-logits features) or as an open_clip trunk.

    As the trunk of open_clip's ``TimmModel`` (``outer``), features go on through that model's head.
    """

    def __init__(
        self, vit: VisionTransformer, name: str, outer: nn.Module | None = None, prefix: str = "model."
    ) -> None:
        """Wrap ``vit`` (inside ``outer`` when it is a trunk); parameters are named ``prefix + name``
        in the backbone, ``prefix`` naming ``outer`` when given."""
        self.vit = vit
        self.outer = outer
        self.name = name
        self._prefix = prefix
        self._blocks = [_TimmBlock(block) for block in vit.blocks]

    @property
    def width(self) -> int:
        """Token width."""
        return int(self.vit.embed_dim)

    @property
    def module(self) -> nn.Module:
        """The ViT, or open_clip's ``TimmModel`` around it."""
        return self.outer if self.outer is not None else self.vit

    @property
    def blocks(self) -> list[TransformerBlock]:
        """The transformer blocks."""
        return self._blocks

    @property
    def num_prefix_tokens(self) -> int:
        """Class token (if any) and register tokens."""
        return int(self.vit.num_prefix_tokens)

    @property
    def projection(self) -> torch.Tensor | None:
        """A trunk's one bias-free linear head after pooling, or None: the pooled tokens are the features."""
        if self.outer is None:
            return None
        # Dropout is the identity in eval mode, so a head of dropout and one matrix is that matrix.
        layers = [m for m in (self.vit.head, *self.outer.head) if not isinstance(m, (nn.Identity, nn.Dropout))]
        if not layers:
            return None
        if len(layers) == 1 and isinstance(layers[0], nn.Linear) and layers[0].bias is None:
            return layers[0].weight.T
        raise NotImplementedError(f"{self.name}: the head after pooling is not a single matrix")

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logits features (through open_clip's head for a trunk): the model's own forward."""
        if self.outer is not None:
            return self.outer(pixels)
        return self.vit.forward_head(self.vit.forward_features(pixels), pre_logits=True)

    def intermediates(self, pixels: torch.Tensor, layers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Each requested block's output tokens, prefix tokens first, from timm's ``forward_intermediates``."""
        wanted = level_indices(layers, self.depth, "blocks")
        taken = sorted(set(wanted))
        levels = self.vit.forward_intermediates(
            pixels, indices=taken, return_prefix_tokens=True, stop_early=True, output_fmt="NLC", intermediates_only=True
        )
        # Without prefix tokens timm returns the patch tokens alone instead of (patches, prefix) pairs.
        if self.num_prefix_tokens:
            levels = [torch.cat([prefix, patches], dim=1) for patches, prefix in levels]
        by_index = dict(zip(taken, levels))
        return [by_index[i] for i in wanted]

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch embedding, prefix tokens, positional embedding, patch dropout (off in eval), ``norm_pre``."""
        vit = self.vit
        # _pos_embed is how timm's own forward_features adds prefix tokens and positions.
        return vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(pixels))))

    def class_token(self) -> torch.Tensor:
        """``norm_pre(cls_token)``; ``NotImplementedError`` for a ViT built without a class token."""
        if self.vit.cls_token is None:
            raise NotImplementedError(f"{self.name}: the ViT has no class token")
        return self.vit.norm_pre(self.vit.cls_token.reshape(-1))

    def final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """timm's ``norm`` (an identity for models that normalise after pooling, with ``fc_norm``)."""
        return self.vit.norm(tokens)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Final norm, then timm's pooling head up to the pre-logits (and open_clip's head for a trunk)."""
        if self.outer is not None:
            # What TimmModel.forward does after the trunk's blocks.
            return self.outer.head(self.vit.forward_head(self.vit.norm(tokens)))
        return self.vit.forward_head(self.vit.norm(tokens), pre_logits=True)

    def parameter_blocks(self) -> dict[str, nn.Parameter]:
        """Every parameter of the ViT (and of open_clip's head around a trunk)."""
        return {f"{self._prefix}{name}": param for name, param in self.module.named_parameters()}


class _TimmBlock(TransformerBlock):
    """A timm ViT ``Block``; other block types run whole but cannot be split or prefixed."""

    def __init__(self, block: nn.Module) -> None:
        self.block = block

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        if prefix is not None:
            return super().__call__(x, prefix)
        # The block itself, so an unprefixed pass is bit-identical to timm's forward.
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

    def keys_values(self, x: torch.Tensor) -> Prefix:
        attn = _plain_attention(self._standard().attn)
        _, k, v = attn.qkv(self.norm1(x)).chunk(3, dim=-1)
        return k, v

    def _standard(self) -> Block:
        # Subclasses and other block types (post-norm, parallel) compose their parts differently.
        if type(self.block) is not Block:
            raise NotImplementedError(
                f"splitting a {type(self.block).__name__} into norm/attention/MLP steps is not supported; "
                "only timm's standard pre-norm Block"
            )
        return self.block


def _plain_attention(attn: nn.Module) -> Attention:
    if type(attn) is not Attention or not isinstance(attn.q_norm, nn.Identity):
        # With qk-norm it is undefined whether prefix keys are in normalised space.
        raise NotImplementedError(
            f"key/value prefixes need timm's plain Attention without qk-norm; got {type(attn).__name__}"
        )
    return attn


def _prefixed_attention(attn: nn.Module, x: torch.Tensor, prefix: Prefix) -> torch.Tensor:
    """timm ``Attention.forward`` with prefix keys and values appended after the qkv projection."""
    attn = _plain_attention(attn)
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
