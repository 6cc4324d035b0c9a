"""Single vocabulary tokens as prompts: their text features, ranked against RAVE's residual vector.

Each token ``i`` is encoded as the prompt ``<start> i <end>`` (ids built directly, so a word piece is
not re-tokenised); the start and end tokens themselves are left out of the ranking.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import shifted_residual

#: Prompts per text-tower pass.
CHUNK = 2048


def token_features(backbone) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw (unnormalised) text features (V', D) of every ordinary token, and their token ids (V',)."""
    template = backbone.text.tokenize([""])[0]
    start, end = int(template[0]), int(template[int(backbone.text.eot_index(template[None])[0])])
    ids = torch.tensor([i for i in range(backbone.text.vocab_size) if i not in (start, end)])
    parts = []
    with torch.no_grad():
        for chunk in ids.split(CHUNK):
            prompts = template.repeat(len(chunk), 1)
            prompts[:, 1], prompts[:, 2] = chunk, end
            if backbone.text.causal:
                eot = torch.full((len(chunk),), 2, dtype=torch.long)
                embeddings = backbone.text.token_embedding(prompts[:, :3])
                features = backbone.text.encode_embeddings(embeddings, eot)
            else:
                features = backbone.encode_text(prompts)
            parts.append(features.float())
    return torch.cat(parts), ids


def shift_residual(adapter, residual: torch.Tensor, m_pos: torch.Tensor) -> dict[str, torch.Tensor]:
    """RAVE-shifted's v' and t' for the adapter's ``shift_tokens`` (see :func:`losses.shifted_residual`)."""
    features, _ = token_features(adapter.backbone)
    return shifted_residual(residual.float(), features, m_pos.float(), adapter.config.shift_tokens)


def nearest_tokens(backbone, residual: torch.Tensor, top: int) -> dict[str, list[tuple[str, float]]]:
    """The ``top`` tokens with the highest and the lowest cosine to ``residual``, as (text, cosine)."""
    features, ids = token_features(backbone)
    similarity = F.normalize(features, dim=-1) @ residual.float()
    order = torch.argsort(similarity, descending=True)
    words = backbone.text.vocabulary()

    def listed(index: torch.Tensor) -> list[tuple[str, float]]:
        return [(words[int(ids[i])], float(similarity[i])) for i in index]

    return {"nearest": listed(order[:top]), "farthest": listed(order.flip(0)[:top])}
