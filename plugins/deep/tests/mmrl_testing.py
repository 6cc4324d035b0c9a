"""Helpers of MMRL's tests (a module name of its own, so it never collides with other test folders)."""

from __future__ import annotations

from typing import Any

#: Blocks of the deeper tiny CLIP: as many as shapes-clip has (4 image, 3 text), so that a range
#: leaves blocks outside it in both towers.
IMAGE_DEPTH, TEXT_DEPTH = 4, 3


def deeper_tiny_backbone(seed: int = 0) -> Any:
    """A random tiny open_clip CLIP (32 x 32 images, width 64) with 4 image and 3 text blocks."""
    import torch
    from mmadapt import OpenClipBackbone
    from mmadapt.testing_models import tiny_openclip_config
    from open_clip.model import CLIP

    config = tiny_openclip_config()
    config["vision_cfg"]["layers"] = IMAGE_DEPTH
    config["text_cfg"]["layers"] = TEXT_DEPTH
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**config).eval()
    return OpenClipBackbone(model, name="deeper tiny openclip")


def build_mmrl(backbone: Any, task: Any, **options: Any) -> Any:
    """The ``mmrl`` adapter on ``backbone`` for ``task``, built through the registry with recipe ``options``."""
    from mmadapt import get_plugin_manager

    component = get_plugin_manager().registry.get("adapter", "mmrl")
    return component.build(component.config(**options), backbone, task)


def randomise(module: Any, seed: int = 0, std: float = 0.5) -> None:
    """Move every trainable parameter by N(0, std): the tokens then change what the towers compute."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * std)
