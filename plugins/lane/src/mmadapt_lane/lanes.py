"""The operators of a MULTI-LANE lane, on the frozen parts of a ViT block (``mmadapt.TransformerBlock``).

A lane is a short token stream ``(B, 1 + S, width)``: its class token and S selector slots. In every
block the selectors summarise the block's LN1-normalised, detached frozen tokens; the lane attends
over [its class token, the summaries] with the frozen projections (and the task's key/value prompts);
only the class token's attention output is kept and the selector slots take back their LN1 values
(drop-and-replace); then the block's residuals and frozen MLP run on every lane token. The ablations
follow the reference code (tdemin16/multi-lane): without drop-and-replace the selectors summarise in
the first block only and the lane carries those tokens on; with token merging the lane takes the
attention output of the merged frozen class token.
"""

from __future__ import annotations

import math

import torch
from mmadapt import Backbone, UserError


def selector_summaries(selectors: torch.Tensor, frozen: torch.Tensor) -> torch.Tensor:
    """Each selector's softmax-weighted sum of the frozen tokens.

    ``selectors`` (B, S, width) are the lane's normalised selector slots, ``frozen`` (B, N, width) the
    normalised frozen tokens (class token included); weights are ``softmax(s . x / sqrt(width))`` over
    the N tokens. Returns (B, S, width).
    """
    weights = torch.softmax(selectors @ frozen.transpose(1, 2) / math.sqrt(frozen.shape[-1]), dim=-1)
    return weights @ frozen


def merged_tokens(frozen: torch.Tensor, count: int) -> torch.Tensor:
    """At most ``count`` tokens merged from the frozen tokens by bipartite soft matching (ToMe), class
    token kept first and never merged.

    As MULTI-LANE's reference: each round, alternate tokens form two sets; each token of the first set
    (the class token excepted) is matched to its most similar (cosine) token of the second, and the
    ``(N - 1) // 2`` best-matched pairs merge into plain means (every token weighs 1 in every round);
    rounds repeat while more than ``count`` tokens remain, so the last round may go below ``count``
    (65 tokens, ``count`` 10: 65, 33, 17, 9). (B, N, width) -> (B, M, width), M <= ``count`` unless
    no pair is left to merge.
    """
    tokens = frozen
    while tokens.shape[1] > count:
        merges = (tokens.shape[1] - 1) // 2
        if merges == 0:
            break
        a, b = tokens[:, ::2], tokens[:, 1::2]
        # In fp32: the floor 1e-12 is 0 in fp16, where a zero token would match as 0 / 0.
        normed_a, normed_b = (t.float() / t.float().norm(dim=-1, keepdim=True).clamp(min=1e-12) for t in (a, b))
        scores = normed_a @ normed_b.transpose(1, 2)
        scores[:, 0] = -math.inf  # the class token
        best, match = scores.max(dim=-1)
        order = best.argsort(dim=-1, descending=True)
        merged, kept = order[:, :merges], order[:, merges:].sort(dim=-1).values

        def pick(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return t.gather(1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))

        targets = match.gather(1, merged).unsqueeze(-1)
        sums = b.scatter_add(1, targets.expand(-1, -1, b.shape[-1]), pick(a, merged))
        sizes = torch.ones_like(b[..., :1]).scatter_add(1, targets, torch.ones_like(targets, dtype=b.dtype))
        tokens = torch.cat([pick(a, kept), sums / sizes], dim=1)
    return tokens


def lane_block(
    block,
    lane: torch.Tensor,
    context: torch.Tensor,
    prefix,
    summary: str = "selectors",
    count: int = 0,
    drop_and_replace: bool = True,
    summarise: bool = True,
) -> torch.Tensor:
    """One frozen block on a lane ``(B, 1 + S, width)``; ``context`` (B, N, width) is ``norm1`` of the
    block's frozen input, detached.

    ``summary`` is ``selectors`` or ``merge``. With ``selectors``, the lane's S slots summarise
    ``context`` (when ``summarise``; otherwise the lane attends over its own tokens, as it does after
    the first block without drop-and-replace), and with ``drop_and_replace`` only the class token keeps
    its attention output. With ``merge`` the lane is its class token alone: the block attends over the
    at most ``count`` tokens merged from ``context`` (the frozen class token first) and the lane takes
    the frozen class token's attention output. ``prefix`` (keys, values) of shape (B or 1, P, width) or
    None joins the attention's keys and values.
    """
    normed = block.norm1(lane)
    if summary == "merge":
        branch = block.attention(merged_tokens(context, count), prefix)[:, :1]
    else:
        summaries = selector_summaries(normed[:, 1:], context) if summarise else normed[:, 1:]
        attended = block.attention(torch.cat([normed[:, :1], summaries], dim=1), prefix)
        branch = torch.cat([attended[:, :1], normed[:, 1:]], dim=1) if drop_and_replace else attended
    lane = lane + branch
    return lane + block.feed_forward(lane)


def class_token(backbone: Backbone) -> torch.Tensor:
    """The image tower's pretrained class token ``(width,)``, without positional embedding.

    It passes through the tower's pre-norm (CLIP's ``ln_pre``, timm's ``norm_pre``), as the tokens
    entering the first block do. A ``UserError`` for towers without one.
    """
    image = backbone.require_token_image_tower(
        "adapter multi-lane starts each lane from the class token", "use a ViT backbone"
    )
    try:
        return image.class_token()
    except NotImplementedError as exc:
        raise UserError(
            f"adapter multi-lane needs a ViT image tower with a class token; backbone {backbone.name} has none "
            f"({exc}): use a timm ViT or an open_clip ViT tower"
        ) from None


def check_prompt_layers(backbone: Backbone, prompt_layers: int, needed_by: str) -> None:
    """A ``UserError`` naming ``needed_by`` when the tower is not a ViT, or has fewer blocks than
    ``adapter.prompt_layers`` asks to prompt."""
    depth = backbone.require_token_image_tower(f"{needed_by} prompts a ViT image tower", "use a ViT backbone").depth
    if prompt_layers > depth:
        raise UserError(
            f"adapter.prompt_layers is {prompt_layers}, but backbone {backbone.name} has {depth} blocks; "
            f"use at most {depth}"
        )


def frozen_tokens(backbone: Backbone, pixels: torch.Tensor) -> torch.Tensor:
    """The tokens entering the first block, without gradients."""
    with torch.no_grad():
        return backbone.image.embed(pixels)
