"""Helpers of the plugin's tests (a module name of its own, so it never collides with other test folders)."""

from __future__ import annotations

#: Class names that exercise the prompt layout: multi-token names, "_" for spaces, punctuation.
CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern", "aquarium_fish"]


def randomise(adapter, seed: int = 0) -> None:
    """Give B, V and the gate non-zero values, so that the offset, fusion and projection all act."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in adapter.named_parameters():
            if param.requires_grad and name.split(".")[-1] in ("B", "V", "weight", "bias") and "head" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
