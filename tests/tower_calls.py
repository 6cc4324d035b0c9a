"""Image-tower operations written with ``TokenTower.run``: shallow prompts, prefixes, patch offsets, block outputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmadapt import Backbone, Prefix


def embedded(backbone: Backbone, pixels: torch.Tensor, offsets: torch.Tensor | None) -> tuple[torch.Tensor, dict]:
    """The tokens entering block 0 and the ``replace=`` that adds ``offsets`` to the patch tokens."""
    image = backbone.image
    tokens = image.embed(pixels)
    if offsets is None:
        return tokens, {}
    start = image.num_prefix_tokens
    patches = offsets if offsets.ndim == 3 else offsets[None]
    return tokens, {0: (start, tokens[:, start:] + patches)}


def image_tokens(
    backbone: Backbone,
    pixels: torch.Tensor,
    layers: Sequence[int] | None = None,
    patch_offsets: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """Tokens after each requested block (default: the last), the last block's through the final norm."""
    image = backbone.image
    tokens, replace = embedded(backbone, pixels, patch_offsets)
    wanted = [-1] if layers is None else list(layers)
    outputs = image.run(tokens, replace=replace, layers=wanted).layers
    last = image.depth - 1
    return [image.final_norm(x) if i % image.depth == last else x for i, x in zip(wanted, outputs)]


def prompted_features(
    backbone: Backbone,
    pixels: torch.Tensor,
    prompts: torch.Tensor | None = None,
    prefixes: Sequence[Prefix | None] | None = None,
    patch_offsets: torch.Tensor | None = None,
    normalize: bool = False,
) -> torch.Tensor:
    """Image features with VPT-shallow prompts after the prefix tokens, key/value prefixes and patch offsets."""
    image = backbone.image
    tokens, replace = embedded(backbone, pixels, patch_offsets)
    insert = {} if prompts is None else {0: prompts}
    run = image.run(tokens, insert=insert, insert_at=image.num_prefix_tokens, replace=replace, prefixes=prefixes)
    features = image.head(run.tokens)
    return F.normalize(features, dim=-1) if normalize else features
