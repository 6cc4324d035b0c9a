"""Builtin backbones: ``openclip`` (any open_clip CLIP) and ``timm`` (timm ViTs).

Importing this module is cheap: torch, open_clip and timm are imported by the factories only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from mmadapt.hookspecs import hookimpl


@dataclass
class OpenClipConfig:
    """The recipe's ``backbone:`` section for ``name: openclip``."""

    #: An open_clip architecture (``open_clip.list_models()``), e.g. ``ViT-B-16`` or ``RN50``.
    arch: str = "ViT-B-16"
    #: Required: an open_clip pretrained tag (``openai``, ``laion2b_s34b_b88k`` ...), a local
    #: checkpoint file, or null for random weights (explicit, so a forgotten key never trains on noise).
    pretrained: str | None = MISSING
    #: Where downloaded weights are cached (default: the Hugging Face Hub cache, ``HF_HUB_CACHE``).
    cache_dir: str | None = None
    #: Use QuickGELU activations; null follows the pretrained tag (OpenAI weights need it).
    quick_gelu: bool | None = None

    def __post_init__(self) -> None:
        if not self.arch:
            raise ValueError("backbone.arch must name an open_clip architecture, e.g. ViT-B-16")
        if self.pretrained == "":
            raise ValueError("backbone.pretrained is empty; give a tag, a checkpoint file, or null for random weights")


@dataclass
class TimmConfig:
    """The recipe's ``backbone:`` section for ``name: timm``."""

    #: A timm ViT, optionally with its pretrained tag: ``vit_base_patch16_224.augreg_in21k_ft_in1k``.
    arch: str = "vit_base_patch16_224.augreg_in21k_ft_in1k"
    #: true: the arch's default pretrained weights; false: random weights; a string: that pretrained tag.
    pretrained: bool | str = True
    #: A local checkpoint file; when given, its weights are loaded and nothing is downloaded.
    checkpoint_path: str | None = None
    #: Input size when it differs from the arch's (positional embeddings are resampled).
    img_size: int | None = None
    #: Where downloaded weights are cached (default: the Hugging Face Hub cache, ``HF_HUB_CACHE``).
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.arch:
            raise ValueError("backbone.arch must name a timm ViT, e.g. vit_base_patch16_224")
        if self.pretrained == "":
            raise ValueError("backbone.pretrained is empty; give true, false or a pretrained tag")
        if isinstance(self.pretrained, str) and "." in self.arch:
            raise ValueError(
                f"backbone.arch {self.arch!r} already carries a pretrained tag; "
                f"drop it or drop backbone.pretrained={self.pretrained!r}"
            )
        if self.checkpoint_path is not None and isinstance(self.pretrained, str):
            raise ValueError(
                f"backbone.checkpoint_path and the pretrained tag {self.pretrained!r} both name weights; keep one"
            )
        if self.img_size is not None and self.img_size < 1:
            raise ValueError(f"backbone.img_size must be a positive number of pixels; got {self.img_size}")


def build_openclip(config: OpenClipConfig) -> Any:
    """Build an ``OpenClipBackbone`` from its recipe section."""
    from .openclip import OpenClipBackbone

    return OpenClipBackbone.from_config(config)


def build_timm(config: TimmConfig) -> Any:
    """Build a ``TimmBackbone`` from its recipe section."""
    from .timm_vit import TimmBackbone

    return TimmBackbone.from_config(config)


@hookimpl
def register_backbones(register: Any) -> None:
    """Register the ``openclip`` and ``timm`` backbones."""
    register(
        "openclip",
        build_openclip,
        OpenClipConfig,
        "any open_clip CLIP (ViT or ResNet image tower) with a pretrained tag, a local checkpoint or random weights",
    )
    register(
        "timm",
        build_timm,
        TimmConfig,
        "an image-only timm ViT (image features, tokens, prompts and prefixes; no text tower)",
    )
