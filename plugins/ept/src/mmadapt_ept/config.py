"""Recipe sections of the EPT adapters. Cheap to import: dataclasses and checks only."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt import UserError, check_prompt_context


class EptConfigError(UserError, ValueError):
    """A bad ``adapter`` key of an EPT recipe; a ``ValueError`` too, so recipe validation reports it."""


def _at_least(key: str, value: int, low: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise EptConfigError(f"adapter.{key} must be an integer >= {low} ({meaning}); got {value!r}")


@dataclass
class PartsConfig:
    """The EPT hyper-parameters both adapters share (ept.md, "Our specification")."""

    #: Rank r of the offset A B; 0 removes the offset (vanilla prompt tuning).
    rank: int = 8
    #: alpha of the offset scale c = alpha / sqrt(r) (DePT's lora_alpha).
    alpha: float = 8.0
    #: Prompt fusion: P_f = P_s + softmax(P_s Δᵀ / √d) Δ.
    fusion: bool = True
    #: Multi-space projection: P = P_f + Σ_k g_k P_f U_k V_k with a gate g over K subspaces.
    projection: bool = True
    #: K, the number of projection subspaces.
    subspaces: int = 4
    #: q, the rank of each subspace's map U_k V_k.
    subspace_rank: int = 8

    def check_parts(self) -> None:
        """Refuse negative ranks and fewer than one subspace, naming the key."""
        _at_least("rank", self.rank, 0, "the rank of the low-rank offset; 0 switches it off")
        _at_least("subspaces", self.subspaces, 1, "K, the number of projection subspaces")
        _at_least("subspace_rank", self.subspace_rank, 1, "q, the rank of each projection subspace")


@dataclass
class EptConfig(PartsConfig):
    """``ept``: EPT on the CLIP text tower; P replaces CoOp's context."""

    #: m, the short prompt's tokens; null: 4, or the number of BPE tokens of ``init``.
    n_ctx: int | None = None
    #: Words whose token embeddings start P_s ("a photo of a"); null: N(0, 0.02) draws.
    init: str | None = None
    #: Where the class name goes: ``end``, ``middle`` or ``front`` (CoOp's layouts).
    class_token_position: str = "end"
    #: Cut the text sequence after the longest end token (causal towers). With fusion on, the offset
    #: length s is then fixed to the training classes' length and stored in checkpoints.
    truncate: bool = False

    def __post_init__(self) -> None:
        if self.n_ctx is not None:
            _at_least("n_ctx", self.n_ctx, 1, "m, the short prompt's tokens")
        self.check_parts()
        check_prompt_context(self.n_ctx, self.init, self.class_token_position)


@dataclass
class EptVisualConfig(PartsConfig):
    """``ept-visual``: EPT as shallow visual prompts on a ViT image tower."""

    #: m, the visual prompt tokens inserted after the prefix tokens.
    n_ctx: int = 10
    #: Classify with the frozen zero-shot text head (``zeroshot``, needs a text tower) or a trained
    #: linear head (``linear``); null: zero-shot when the backbone has a text tower.
    head: str | None = None

    def __post_init__(self) -> None:
        _at_least("n_ctx", self.n_ctx, 1, "m, the visual prompt tokens")
        self.check_parts()
        if self.head not in (None, "zeroshot", "linear"):
            raise EptConfigError(f"adapter.head must be zeroshot, linear or null; got {self.head!r}")
