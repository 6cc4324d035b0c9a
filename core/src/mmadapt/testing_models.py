"""Tiny randomly initialised backbones for tests: real open_clip and timm code, built in well under a second.

They have CLIP's interfaces (77-token BPE text, class token + patches) at toy widths, so tests of
adapters, objectives and the engine exercise the same code paths as with pretrained models::

    from mmadapt.testing_models import tiny_openclip_backbone, tiny_timm_backbone

    clip = tiny_openclip_backbone()              # ViT image tower, text tower
    rn = tiny_openclip_backbone(arch="resnet")   # ModifiedResNet image tower
    vit = tiny_timm_backbone()                   # image-only timm ViT

Building them never touches the global random state: each seed gives the same weights every time.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import torch

#: Image and text sizes shared by the tiny models.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_EMBED_DIM = 32

_TEXT_CFG: dict[str, Any] = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2}
_VISION_CFGS: dict[str, dict[str, Any]] = {
    # 2 blocks of width 64, 2 heads; 4 x 4 patches + CLS = 17 tokens.
    "vit": {"image_size": TINY_IMAGE_SIZE, "patch_size": TINY_PATCH_SIZE, "layers": 2, "width": 64, "head_width": 32},
    # ModifiedResNet with one bottleneck per stage; stem width 16, 512 channels after layer4.
    "resnet": {"image_size": TINY_IMAGE_SIZE, "layers": [1, 1, 1, 1], "width": 16, "head_width": 64},
}


def tiny_openclip_config(arch: str = "vit") -> dict[str, Any]:
    """An open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``) of a tiny CLIP.

    ``arch`` is ``"vit"`` or ``"resnet"``. The dict works with ``open_clip.model.CLIP(**config)`` and,
    saved as ``<name>.json``, with ``open_clip.add_model_config`` and ``open_clip.create_model(name)``.
    """
    if arch not in _VISION_CFGS:
        raise ValueError(f"arch must be one of {', '.join(_VISION_CFGS)}; got {arch!r}")
    return {"embed_dim": TINY_EMBED_DIM, "vision_cfg": copy.deepcopy(_VISION_CFGS[arch]), "text_cfg": dict(_TEXT_CFG)}


def tiny_openclip_model(arch: str = "vit", seed: int = 0) -> torch.nn.Module:
    """A randomly initialised tiny ``open_clip.model.CLIP`` (fp32, eval mode, nothing frozen)."""
    from open_clip.model import CLIP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**tiny_openclip_config(arch))
    return model.eval()


def tiny_openclip_backbone(arch: str = "vit", seed: int = 0) -> Any:
    """An ``OpenClipBackbone`` around ``tiny_openclip_model(arch, seed)`` with CLIP's BPE tokenizer."""
    from mmadapt.builtin.openclip import OpenClipBackbone

    return OpenClipBackbone(tiny_openclip_model(arch, seed), _clip_tokenizer(), name=f"tiny openclip {arch}",
                            model_config=tiny_openclip_config(arch))


def tiny_clip_from_config(config: Any) -> Any:
    """The ``tiny-clip`` backbone of a recipe section (``arch``, ``seed``)."""
    return tiny_openclip_backbone(config.arch, config.seed)


def tiny_timm_model(seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A randomly initialised tiny timm ``VisionTransformer`` without classifier.

    32 x 32 inputs, 8 x 8 patches, 2 blocks of width 64 with 2 heads. ``overrides`` go to
    ``timm.create_model`` (e.g. ``reg_tokens=4``, ``global_pool="avg"``, ``class_token=False``).
    """
    import timm

    options: dict[str, Any] = {
        "img_size": TINY_IMAGE_SIZE,
        "patch_size": TINY_PATCH_SIZE,
        "depth": 2,
        "embed_dim": 64,
        "num_heads": 2,
        "num_classes": 0,
        **overrides,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **options)
    return model.eval()


def tiny_timm_backbone(seed: int = 0, **overrides: Any) -> Any:
    """A ``TimmBackbone`` around ``tiny_timm_model(seed, **overrides)``."""
    from mmadapt.builtin.timm_vit import TimmBackbone

    return TimmBackbone(tiny_timm_model(seed, **overrides), name="tiny timm vit")


@lru_cache(maxsize=1)
def _clip_tokenizer() -> Any:
    # Reading the BPE merges takes a noticeable fraction of a second; sharing is safe (its only state
    # is a memo of encoded words).
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=_TEXT_CFG["context_length"])
