"""The losses of CLIP-LIT and RAVE on unit-norm image features and guidance vectors.

Prompt index 0 is the negative (backlit) prompt, 1 the positive (well-lit) one. CLIP-LIT's scale is a
fixed 100, not the model's logit scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: CLIP-LIT's fixed temperature of the prompt softmax.
PROMPT_SCALE = 100.0

#: CLIP-LIT's ranking pairs on p_neg, (higher, lower, margin), by how many earlier outputs are cached.
#: Ranks: 0 backlit, 1 well-lit, 2 the newest output, 3 the one before it.
RANKING_PAIRS: dict[int, tuple[tuple[int, int, float], ...]] = {
    0: ((0, 1, 1.0),),
    1: ((0, 1, 0.9), (0, 2, 0.9), (2, 1, 0.2)),
    2: ((0, 1, 0.9), (0, 2, 0.9), (2, 3, 0.1), (3, 1, 0.1)),
}


def prompt_logits(image_features: torch.Tensor, prompt_features: torch.Tensor) -> torch.Tensor:
    """100 cos(image, T) for the two prompts: (..., 2) for unit-norm features (..., D) and (2, D)."""
    return PROMPT_SCALE * image_features @ prompt_features.t()


def prompt_probabilities(image_features: torch.Tensor, prompt_features: torch.Tensor) -> torch.Tensor:
    """softmax(100 cos(image, T)) over the two prompts, (..., 2)."""
    return prompt_logits(image_features, prompt_features).softmax(dim=-1)


def clip_loss(image_features: torch.Tensor, prompt_features: torch.Tensor) -> torch.Tensor:
    """L_clip: the batch mean of the negative prompt's probability for the enhanced images."""
    return prompt_probabilities(image_features, prompt_features)[..., 0].mean()


def ranking_loss(negative_probabilities: torch.Tensor, cached: int) -> torch.Tensor:
    """L_rank: margin ranking on p_neg (B, ranks) of (backlit, well-lit, newest, previous) images.

    For each pair (higher, lower, m) of :data:`RANKING_PAIRS` ``[cached]`` the batch mean of
    ``max(0, m - (p_higher - p_lower))``, summed over the pairs.
    """
    total = negative_probabilities.new_zeros(())
    for higher, lower, margin in RANKING_PAIRS[cached]:
        gap = negative_probabilities[:, higher] - negative_probabilities[:, lower]
        total = total + F.relu(margin - gap).mean()
    return total


def guidance_loss(image_features: torch.Tensor, residual: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RAVE's L_guid: the batch mean of (cos(image, v_res) - t)^2 for unit-norm image features."""
    return ((image_features @ residual - target) ** 2).mean()


def identity_loss(
    outputs: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor], weights: Sequence[float]
) -> torch.Tensor:
    """L_id: sum over images and levels of w_l MSE(F_l(out), F_l(in)), each MSE an element mean per image."""
    total = outputs[0].new_zeros(())
    for weight, out, ref in zip(weights, outputs, inputs, strict=True):
        per_image = ((out - ref) ** 2).flatten(1).mean(dim=1)
        total = total + weight * per_image.sum()
    return total


def residual_vector(well_lit: torch.Tensor, backlit: torch.Tensor) -> dict[str, torch.Tensor]:
    """RAVE's residual from image features (N, D) of well-lit and backlit images.

    Each embedding is L2-normalised, each set averaged and normalised (m_pos, m_neg);
    ``v_res = normalize(m_pos - m_neg)`` and ``t = m_pos . v_res``.
    """
    m_pos = F.normalize(F.normalize(well_lit.double(), dim=-1).mean(0), dim=0)
    m_neg = F.normalize(F.normalize(backlit.double(), dim=-1).mean(0), dim=0)
    residual = F.normalize(m_pos - m_neg, dim=0)
    return {
        "residual": residual.float(),
        "target": (m_pos @ residual).float(),
        "m_pos": m_pos.float(),
        "m_neg": m_neg.float(),
    }


def shifted_residual(
    residual: torch.Tensor, token_features: torch.Tensor, m_pos: torch.Tensor, tokens: int = 15
) -> dict[str, torch.Tensor]:
    """RAVE-shifted: project out the direction of the tokens nearest and farthest from ``residual``.

    ``token_features`` (V, D) are the text tower's raw (unnormalised) features of single tokens;
    their cosines with ``residual`` are ``s``. ``a`` is the normalised mean of ``s_i e_i`` (the raw
    features, as RAVE weighs them) over the ``tokens`` highest ``s``, ``b`` the same over the lowest
    (their negative ``s_i`` flips them toward ``+v``); ``u = normalize(a + b)``,
    ``v' = normalize(v - (u . v) u)`` and ``t' = m_pos . v'``.
    """
    similarity = F.normalize(token_features, dim=-1) @ residual
    order = torch.argsort(similarity, descending=True)
    top, bottom = order[:tokens], order[-tokens:]

    def weighted_mean(index: torch.Tensor) -> torch.Tensor:
        return F.normalize((similarity[index, None] * token_features[index]).mean(0), dim=0)

    u = F.normalize(weighted_mean(top) + weighted_mean(bottom), dim=0)
    shifted = F.normalize(residual - (u @ residual) * u, dim=0)
    return {"residual": shifted, "target": m_pos @ shifted, "direction": u, "top": top, "bottom": bottom}
