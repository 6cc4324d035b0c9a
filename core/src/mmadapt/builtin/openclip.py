"""``OpenClipBackbone``: any open_clip model behind the ``Backbone`` contract."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.modified_resnet import ModifiedResNet
from open_clip.timm_model import TimmModel
from open_clip.tokenizer import HFTokenizer
from open_clip.transformer import CustomResidualAttentionBlock, VisionTransformer
from timm.models.vision_transformer import VisionTransformer as TimmVisionTransformer
from torch import nn

from mmadapt.backbone import Backbone, Prefix, Preprocessing, VisionBlock, level_indices, multi_head_attention
from mmadapt.errors import UserError

from .hub import download_failure, hub_offline_when_unreachable, offline_help
from .timm_vit import vit_blocks, vit_class_token, vit_token_embeddings

if TYPE_CHECKING:
    # Only for annotations: backbones.py imports this module lazily, and not the other way round.
    from .config import OpenClipConfig

#: Maps a list of texts to token ids ``(n, context_length)``; open_clip's tokenizers are such callables.
Tokenizer = Callable[[list[str]], torch.Tensor]

#: Text pooling types whose pooled position is a token index, so prompt embeddings can be pooled too.
_INDEX_POOLING = ("argmax", "eos")


class OpenClipBackbone(Backbone):
    """An open_clip model (CLIP, CustomTextCLIP, CoCa) with any image tower.

    ``encode_text``, ``encode_image`` and ``image_intermediates`` work for every tower. Prompt learning
    on the text side needs open_clip's own text transformer pooled at the end token; the image-token
    operations (tokens, prompts, prefixes, patch offsets) need open_clip's ViT tower or a timm
    ``VisionTransformer`` trunk.
    """

    has_text = True

    def __init__(self, model: nn.Module, tokenizer: Tokenizer | None = None, name: str = "openclip") -> None:
        """Wrap an already built open_clip ``model``; freezes it and puts it in eval mode.

        ``tokenizer`` defaults to open_clip's CLIP BPE tokenizer at the model's context length.
        Plugins that build their own open_clip model (their own config and weights) use this.
        """
        super().__init__()
        self.model = model
        self.name = name
        if tokenizer is None:
            tokenizer = open_clip.SimpleTokenizer(context_length=model.context_length)
        self.tokenizer = tokenizer
        text = getattr(model, "text", model)
        self._text_pool_type: str | None = getattr(text, "text_pool_type", getattr(text, "pool_type", None))
        self._text_eos_id: int | None = getattr(text, "text_eos_id", getattr(text, "eos_id", None))
        self._causal_text = _attends_causally(text, self._text_pool_type)
        self._preprocessing = _preprocessing_of(model.visual)
        self._vocabulary: list[str] | None = None
        self._embed_dim = _embed_dim_of(model) or self._probe_embed_dim()
        self.freeze_pretrained()

    @classmethod
    def from_config(cls, config: OpenClipConfig) -> OpenClipBackbone:
        """Build the model and tokenizer named by a recipe section; user mistakes raise ``UserError``."""
        _check_arch(config.arch)
        pretrained = os.path.expanduser(config.pretrained) if config.pretrained else None
        tag_cfg = _pretrained_tag_cfg(config.arch, pretrained)
        model = _create_model(config, pretrained, tag_cfg)
        tokenizer = _fetch(
            lambda: open_clip.get_tokenizer(config.arch, cache_dir=config.cache_dir),
            f"the tokenizer of {config.arch!r}",
            local_key=None,
        )
        return cls(model, tokenizer, name=f"openclip {config.arch}")

    # -- shared ---------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text space."""
        return self._embed_dim

    @property
    def vision_width(self) -> int:
        """Token width of a transformer tower, or the channels of a convolutional tower's last feature map."""
        visual = self.model.visual
        if isinstance(visual, VisionTransformer):
            return visual.transformer.width
        if isinstance(visual, ModifiedResNet):
            return visual.attnpool.k_proj.in_features
        if isinstance(visual, TimmModel):
            return int(visual.trunk.feature_info[-1]["num_chs"])
        raise self._unsupported("vision_width", f"unknown image tower {type(visual).__name__}")

    @property
    def preprocessing(self) -> Preprocessing:
        """Size, mean and std from the model's ``preprocess_cfg`` (open_clip's defaults where unset)."""
        return self._preprocessing

    @property
    def logit_scale(self) -> torch.Tensor:
        """``exp`` of the model's learned temperature, as a scalar tensor."""
        # Some models store it with shape (1,); callers multiply logits by a scalar.
        return self.model.logit_scale.exp().reshape(())

    # -- text tower -----------------------------------------------------------------------------
    @property
    def text_width(self) -> int:
        """Width of the causal text transformer."""
        return self._text_tower().transformer.width

    @property
    def context_length(self) -> int:
        """Number of text positions (77 for CLIP)."""
        return self.model.context_length

    @property
    def causal_text(self) -> bool:
        """Read from the text tower: a causal mask, pooling at the end token, no appended class token."""
        return self._causal_text

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids ``(n, context_length)`` on the model's device."""
        return self.tokenizer(list(texts)).to(self.model.logit_scale.device)

    @property
    def vocab_size(self) -> int:
        """Number of token ids of the tokenizer."""
        return len(self._tokenizer_vocabulary())

    def vocabulary(self) -> list[str]:
        """Each token id decoded on its own by the model's tokenizer (CLIP's BPE or a Hugging Face one)."""
        return list(self._tokenizer_vocabulary())

    def _tokenizer_vocabulary(self) -> list[str]:
        if self._vocabulary is None:
            tokenizer = self.tokenizer
            if isinstance(tokenizer, open_clip.SimpleTokenizer):
                decode, size = tokenizer.decode, len(tokenizer.encoder)
            elif isinstance(tokenizer, HFTokenizer):
                decode, size = tokenizer.tokenizer.decode, len(tokenizer.tokenizer)
            else:
                kind = type(tokenizer).__name__
                raise self._unsupported("vocabulary", f"needs open_clip's SimpleTokenizer or HFTokenizer, got {kind}")
            self._vocabulary = [decode([token]).strip() for token in range(size)]
        return self._vocabulary

    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Where the model pools text features: the highest id (CLIP's end token) or the first ``eos_id``."""
        if self._index_pooling() == "argmax":
            return token_ids.argmax(dim=-1)
        return (token_ids == self._text_eos_id).int().argmax(dim=-1)

    def token_embedding(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``(n, L, text_width)`` of token ids."""
        return self._text_tower().token_embedding(token_ids)

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """open_clip's own text encoder."""
        return self.model.encode_text(token_ids, normalize=normalize)

    def encode_text_embeddings(
        self, embeddings: torch.Tensor, eot_index: torch.Tensor, normalize: bool = False
    ) -> torch.Tensor:
        """Text features of prompt embeddings ``(n, L, text_width)``, ``L <= context_length``.

        Positional embedding and causal mask are cut to ``L``, so a sequence cut after its longest
        end token gives the same features as the full one.
        """
        text = self._text_tower()
        self._index_pooling()
        count, length = embeddings.shape[:2]
        if length > self.context_length:
            raise ValueError(f"{self.name}: {length} text positions given, the model has {self.context_length}")
        dtype = text.transformer.get_cast_dtype()
        x = embeddings.to(dtype) + text.positional_embedding[:length].to(dtype)
        mask = None if text.attn_mask is None else text.attn_mask[:length, :length]
        x = text.ln_final(text.transformer(x, attn_mask=mask))
        x = x[torch.arange(count, device=x.device), eot_index.to(x.device)]
        x = _project(x, text.text_projection)
        return F.normalize(x, dim=-1) if normalize else x

    def towers(self) -> dict[str, nn.Module]:
        """The frozen towers: ``vision`` and ``text`` (the text transformer, or the Hugging Face text model)."""
        text = getattr(self.model, "text", None)
        return {"vision": self.model.visual, "text": text if text is not None else self.model.transformer}

    def _text_tower(self) -> nn.Module:
        """The module holding the causal text transformer's parts (the CLIP itself or ``model.text``)."""
        text = getattr(self.model, "text", self.model)
        custom = getattr(text, "cls_emb", None) is not None or getattr(text, "use_pad_mask", False)
        if not isinstance(getattr(text, "token_embedding", None), nn.Embedding) or custom:
            raise self._unsupported(
                "prompt learning on the text tower",
                f"it needs open_clip's causal text transformer; this model's text tower is {type(text).__name__}",
            )
        return text

    def _index_pooling(self) -> str:
        if self._text_pool_type not in _INDEX_POOLING:
            raise self._unsupported(
                "prompt learning on the text tower",
                f"the text tower pools with {self._text_pool_type!r}; supported: {', '.join(_INDEX_POOLING)}",
            )
        return self._text_pool_type

    # -- image tower ----------------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, normalize: bool = False, preprocess: bool = False) -> torch.Tensor:
        """open_clip's own image encoder, after ``prepare_pixels`` when ``preprocess``."""
        return self.model.encode_image(self.prepare_pixels(pixels) if preprocess else pixels, normalize=normalize)

    def image_intermediates(
        self, pixels: torch.Tensor, layers: Sequence[int] | None = None, preprocess: bool = False
    ) -> list[torch.Tensor]:
        """The tower's own ``forward_intermediates``: ViT blocks, ResNet stem and stages, timm trunk levels.

        ViTs (open_clip's, or a timm trunk with prefix tokens such as EVA) give tokens with the
        prefix tokens first; ResNets, ConvNeXts, FastViTs and Swins give ``(B, C, H, W)`` maps.
        """
        visual = self.model.visual
        wanted = level_indices(layers, *self._image_levels())
        taken = sorted(set(wanted))
        tokens = isinstance(visual, VisionTransformer) or hasattr(getattr(visual, "trunk", None), "num_prefix_tokens")
        out = visual.forward_intermediates(
            self.prepare_pixels(pixels) if preprocess else pixels,
            indices=taken,
            stop_early=True,
            intermediates_only=True,
            output_fmt="NLC" if tokens else "NCHW",
            output_extra_tokens=tokens,
        )
        levels = out["image_intermediates"]
        # Towers without prefix tokens (average-pooled timm ViTs) return none to put back.
        if "image_intermediates_prefix" in out:
            levels = [torch.cat([prefix, x], dim=1) for prefix, x in zip(out["image_intermediates_prefix"], levels)]
        by_index = dict(zip(taken, levels))
        return [by_index[i] for i in wanted]

    def _image_levels(self) -> tuple[int, str]:
        """How many levels ``forward_intermediates`` of the image tower has, and what they are."""
        visual = self.model.visual
        if isinstance(visual, VisionTransformer):
            return len(visual.transformer.resblocks), "blocks"
        if isinstance(visual, ModifiedResNet):
            return 5, "levels (stem and four stages)"
        if isinstance(visual, TimmModel):
            return len(visual.trunk.feature_info), "levels"
        raise self._unsupported("image_intermediates", f"unknown image tower {type(visual).__name__}")

    @property
    def num_prefix_tokens(self) -> int:
        """The class token of open_clip's ViT; a timm ViT trunk's class and register tokens."""
        vit = self._vit()
        return 1 if isinstance(vit, VisionTransformer) else int(vit.num_prefix_tokens)

    @property
    def image_projection(self) -> torch.Tensor | None:
        """``visual.proj`` of open_clip's ViT; a timm trunk's one bias-free linear head, or None."""
        vit = self._vit()
        if isinstance(vit, VisionTransformer):
            return vit.proj
        # Dropout is the identity in eval mode, so a head of dropout and one matrix is that matrix.
        layers = [m for m in (vit.head, *self.model.visual.head) if not isinstance(m, (nn.Identity, nn.Dropout))]
        if not layers:
            return None
        if len(layers) == 1 and isinstance(layers[0], nn.Linear) and layers[0].bias is None:
            return layers[0].weight.T
        raise self._unsupported("image_projection", "the timm tower's head is not a single matrix")

    def image_token_embeddings(self, pixels: torch.Tensor, preprocess: bool = False) -> torch.Tensor:
        """Patch embedding, prefix tokens, positional embedding, patch dropout (off in eval), pre-norm."""
        vit = self._vit()
        pixels = self.prepare_pixels(pixels) if preprocess else pixels
        # _embeds is exactly the part of VisionTransformer.forward before the blocks.
        return vit._embeds(pixels) if isinstance(vit, VisionTransformer) else vit_token_embeddings(vit, pixels)

    def image_class_token(self) -> torch.Tensor:
        """``ln_pre(class_embedding)`` (a timm trunk's ``norm_pre(cls_token)``)."""
        vit = self._vit()
        if not isinstance(vit, VisionTransformer):
            return vit_class_token(vit, self.name)
        return vit.ln_pre(vit.class_embedding)

    def vision_blocks(self) -> list[VisionBlock]:
        """The residual attention blocks of the ViT tower."""
        vit = self._vit()
        if not isinstance(vit, VisionTransformer):
            return vit_blocks(vit)
        return [_OpenClipBlock(block, vit.transformer.batch_first) for block in vit.transformer.resblocks]

    def vision_final_norm(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_post`` (a timm trunk's ``norm``) on every token."""
        vit = self._vit()
        if not isinstance(vit, VisionTransformer):
            return vit.norm(tokens)
        if vit.attn_pool is not None:
            raise self._unsupported("vision_final_norm", "the tower normalises after its attentional pooling")
        return vit.ln_post(tokens)

    def pool_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """The tower's own pooling (with ``ln_post`` or timm's norms) and projection."""
        vit = self._vit()
        if not isinstance(vit, VisionTransformer):
            # What TimmModel.forward does after the trunk's blocks.
            return self.model.visual.head(vit.forward_head(vit.norm(tokens)))
        pooled, _ = vit._pool(tokens)
        return pooled @ vit.proj if vit.proj is not None else pooled

    def _vit(self) -> VisionTransformer | TimmVisionTransformer:
        """open_clip's ViT tower, or the trunk of a timm tower that is a timm ``VisionTransformer``."""
        visual = self.model.visual
        if isinstance(visual, VisionTransformer):
            return visual
        if isinstance(visual, TimmModel) and isinstance(visual.trunk, TimmVisionTransformer):
            return visual.trunk
        kind = type(getattr(visual, "trunk", visual)).__name__
        raise self._unsupported(
            "image tokens, prompts and prefixes",
            f"they need a ViT image tower (open_clip's or a timm VisionTransformer); this model's is {kind}",
        )

    def _probe_embed_dim(self) -> int:
        with torch.no_grad():
            return int(self.encode_text(self.tokenize([""])).shape[-1])


class _OpenClipBlock(VisionBlock):
    """An open_clip ``ResidualAttentionBlock`` (``nn.MultiheadAttention``) or custom-attention block."""

    def __init__(self, block: nn.Module, batch_first: bool) -> None:
        self.block = block
        self.batch_first = batch_first

    def __call__(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        if prefix is not None:
            return super().__call__(x, prefix)
        # The block itself, so an unprompted pass is bit-identical to open_clip's forward.
        return self.block(x) if self.batch_first else self.block(x.transpose(0, 1)).transpose(0, 1)

    def norm1(self, x: torch.Tensor) -> torch.Tensor:
        return self.block.ln_1(x)

    def attention(self, x: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        block = self.block
        if isinstance(block, CustomResidualAttentionBlock):
            if prefix is not None:
                raise NotImplementedError(
                    "key/value prefixes need nn.MultiheadAttention blocks; this image tower uses open_clip's "
                    "custom attention (qk-norm, scaled cosine or head scaling)"
                )
            return block.ls_1(block.ln_attn(block.attn(x)))
        attn: nn.MultiheadAttention = block.attn
        if prefix is None:
            tokens = x if attn.batch_first else x.transpose(0, 1)
            out = attn(tokens, tokens, tokens, need_weights=False)[0]
            out = out if attn.batch_first else out.transpose(0, 1)
        else:
            q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
            out = attn.out_proj(multi_head_attention(q, k, v, attn.num_heads, prefix))
        return block.ls_1(out)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        block = self.block
        return block.ls_2(block.mlp(block.ln_2(x)))


def _project(x: torch.Tensor, projection: nn.Module | torch.Tensor | None) -> torch.Tensor:
    """Apply a text projection stored as ``nn.Linear``, as a matrix, or absent."""
    if projection is None:
        return x
    return projection(x) if isinstance(projection, nn.Linear) else x @ projection


def _attends_causally(text: nn.Module, pool_type: str | None) -> bool:
    """Whether the end token's features ignore later positions in open_clip's text transformer.

    ``text`` is the CLIP itself or its ``model.text``; Hugging Face towers have no ``attn_mask`` and
    are bidirectional.
    """
    mask = getattr(text, "attn_mask", None)
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2 or pool_type not in _INDEX_POOLING:
        return False
    if getattr(text, "cls_emb", None) is not None or getattr(text, "use_pad_mask", False):
        return False
    future = torch.ones_like(mask, dtype=torch.bool).triu(1)
    return bool(torch.isneginf(mask[future]).all() and (mask[~future] == 0).all())


def _preprocessing_of(visual: nn.Module) -> Preprocessing:
    cfg: dict[str, Any] = getattr(visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height != width:
        raise NotImplementedError(f"non-square image towers ({height}x{width}) are not supported")
    return Preprocessing(
        size=int(height),
        mean=tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        interpolation=cfg.get("interpolation", "bicubic"),
    )


def _embed_dim_of(model: nn.Module) -> int | None:
    """The joint width as the image tower declares it (open_clip ViT and ResNet towers do)."""
    output_dim = getattr(model.visual, "output_dim", None)
    return int(output_dim) if output_dim else None


def _check_arch(arch: str) -> None:
    known = open_clip.list_models()
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise UserError(
            f"openclip: unknown arch {arch!r}{hint}; see python -c 'import open_clip; print(open_clip.list_models())'"
        )


def _pretrained_tag_cfg(arch: str, pretrained: str | None) -> dict[str, Any]:
    """The open_clip config of a pretrained tag; empty for random weights or an existing file."""
    if pretrained is None:
        return {}
    tag_cfg = open_clip.get_pretrained_cfg(arch, pretrained)
    if tag_cfg or os.path.isfile(pretrained):
        return tag_cfg
    tags = open_clip.list_pretrained_tags_by_model(arch)
    close = difflib.get_close_matches(pretrained, tags, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(
        f"openclip: pretrained {pretrained!r} is neither a pretrained tag of {arch}{hint} nor an existing "
        f"checkpoint file. Tags of {arch}: {', '.join(tags) or 'none'}"
    )


def _create_model(config: OpenClipConfig, pretrained: str | None, tag_cfg: dict[str, Any]) -> nn.Module:
    # A tag records whether its weights were trained with QuickGELU; building the arch's default GELU
    # instead would load them without error but give wrong features.
    quick_gelu = config.quick_gelu if config.quick_gelu is not None else bool(tag_cfg.get("quick_gelu", False))

    def create() -> nn.Module:
        return open_clip.create_model(
            config.arch, pretrained=pretrained, cache_dir=config.cache_dir, force_quick_gelu=quick_gelu
        )

    needs = [f"the weights of {config.arch!r} pretrained={pretrained!r}"] if tag_cfg else []
    hf_text = open_clip.get_model_config(config.arch).get("text_cfg", {}).get("hf_model_name")
    if hf_text:
        # transformers fetches the text model's config (and for random weights nothing else) from the Hub.
        needs.append(f"the Hugging Face model {hf_text!r} that the text tower of {config.arch!r} is built from")
    try:
        return _fetch(create, " and ".join(needs), "backbone.pretrained" if tag_cfg else None) if needs else create()
    except UserError:
        raise
    except Exception as exc:
        if pretrained is None or tag_cfg:
            raise
        raise UserError(f"openclip: cannot load checkpoint {pretrained} into {config.arch}: {exc}") from exc


def _fetch(load: Callable[[], Any], what: str, local_key: str | None) -> Any:
    """Run ``load``; a download or cache miss becomes a ``UserError`` that says how to work offline."""
    with hub_offline_when_unreachable() as hub_reached:
        try:
            return load()
        except Exception as exc:
            reason = download_failure(exc)
            if reason is None:
                raise
            raise UserError("openclip: " + offline_help(what, reason, local_key, hub_reached)) from exc
