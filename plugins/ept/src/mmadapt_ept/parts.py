"""EPT's parts on a prompt of width d: the low-rank offset, prompt fusion and multi-space projection.

Shapes follow ept.md: short prompt P_s (m, d); offset Δ = c A B with A (s, r), B (r, d) and
c = alpha / sqrt(r) (0 when r = 0); K subspaces U_k (d, q), V_k (q, d); gate W_g (K, d), b_g (K).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LowRankOffset(nn.Module):
    """Δ = c A B, one row per input position; A is Kaiming-uniform and B zero, so Δ starts at 0 (DePT)."""

    def __init__(self, length: int, width: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.A = nn.Parameter(torch.empty(length, rank))
        self.B = nn.Parameter(torch.zeros(rank, width))
        if rank > 0:
            nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scale = alpha / math.sqrt(rank) if rank > 0 else 0.0

    @property
    def length(self) -> int:
        """s, the number of positions the offset covers."""
        return self.A.shape[0]

    def forward(self) -> torch.Tensor:
        """Δ, ``(s, d)``."""
        return self.scale * (self.A @ self.B)


def fusion_weights(prompt: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """softmax(P_s Δᵀ / √d) over the s offset rows, ``(m, s)``: each row sums to 1."""
    return torch.softmax(prompt @ offset.t() / math.sqrt(prompt.shape[-1]), dim=-1)


def fuse(prompt: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """P_f = P_s + softmax(P_s Δᵀ / √d) Δ: the short prompt attends over the low-rank knowledge."""
    return prompt + fusion_weights(prompt, offset) @ offset


class MultiSpaceProjection(nn.Module):
    """P = P_f + Σ_k g_k P_f U_k V_k with g = softmax(W_g mean_rows(P_f) + b_g).

    V and the gate start at zero, so P = P_f and g = 1/K at initialisation.
    """

    def __init__(self, width: int, subspaces: int, rank: int) -> None:
        super().__init__()
        self.U = nn.Parameter(torch.empty(subspaces, width, rank).normal_(std=0.02))
        self.V = nn.Parameter(torch.zeros(subspaces, rank, width))
        self.gate = nn.Linear(width, subspaces)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def gates(self, prompt: torch.Tensor) -> torch.Tensor:
        """g, ``(K,)``, from the mean of the prompt's rows; sums to 1."""
        return torch.softmax(self.gate(prompt.mean(dim=0)), dim=-1)

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        """The reconstructed prompt, ``(m, d)``."""
        projected = torch.einsum("md,kdq,kqe->kme", prompt, self.U, self.V)
        return prompt + torch.einsum("k,kme->me", self.gates(prompt), projected)


class EptParts(nn.Module):
    """The offset and, when switched on, fusion and projection around a short prompt of width ``width``."""

    def __init__(self, config, length: int, width: int) -> None:
        super().__init__()
        self.fusion = config.fusion
        self.offset = LowRankOffset(length, width, config.rank, config.alpha)
        self.projection = (
            MultiSpaceProjection(width, config.subspaces, config.subspace_rank) if config.projection else None
        )

    def prompt(self, short: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """P from P_s and Δ: fused (P_f) when fusion is on, then projected when projection is on."""
        prompt = fuse(short, offset) if self.fusion else short
        return self.projection(prompt) if self.projection is not None else prompt

    def prompt_parameters(self) -> list[nn.Parameter]:
        """The prompt-side parameters besides P_s: U, V, W_g, b_g (none without projection)."""
        return list(self.projection.parameters()) if self.projection is not None else []

    def low_rank_parameters(self) -> list[nn.Parameter]:
        """A and B."""
        return [self.offset.A, self.offset.B]

    def counts(self, prompt_numel: int) -> dict[str, int]:
        """The per-part parameter counts of ept.md's budget table and the decomposed budget."""
        low_rank = sum(p.numel() for p in self.low_rank_parameters())
        projection = gate = 0
        if self.projection is not None:
            projection = self.projection.U.numel() + self.projection.V.numel()
            gate = sum(p.numel() for p in self.projection.gate.parameters())
        return {
            "prompt": prompt_numel,
            "low_rank": low_rank,
            "fusion": 0,
            "projection": projection,
            "gate": gate,
            "decomposed_budget": prompt_numel + low_rank,
            "ept_extras": projection + gate,
        }
