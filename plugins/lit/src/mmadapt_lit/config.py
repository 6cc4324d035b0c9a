"""Recipe sections of the lit adapters and protocols. Cheap to import: dataclasses and checks only.

Defaults are the papers' settings (docs/methods/clip-lit-rave.md): CLIP-LIT's schedule and loss
weights, RAVE's 6 x 320 guidance weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmadapt import UserError, nested_section

if TYPE_CHECKING:
    from mmadapt import Section

NETWORKS = ("clip-lit-net", "zero-dce", "zero-dce++", "unet")


class LitConfigError(UserError, ValueError):
    """A bad key of a lit recipe section; a ``ValueError`` too, so recipe validation reports it."""


def _positive(section: str, key: str, value, meaning: str, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LitConfigError(f"{section}.{key} must be an integer >= {low} ({meaning}); got {value!r}")


def _non_negative(section: str, key: str, value, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LitConfigError(f"{section}.{key} must be a number >= 0 ({meaning}); got {value!r}")


@dataclass
class EnhancerConfig:
    """Keys every lit adapter shares: the enhancement network and the identity loss's levels."""

    #: ``clip-lit-net`` (I / L), ``zero-dce``, ``zero-dce++`` (curve estimation) or ``unet`` (diffusers).
    network: str = "clip-lit-net"
    #: Image-tower levels of the identity loss (``ImageTower.intermediates`` indices); null: five
    #: evenly spaced levels (a CLIP ResNet's stem and four stages), deepest weighted 0.5.
    identity_levels: list[int] | None = None
    #: A second backbone section for the identity loss (the papers: ``{name: openclip, arch: RN101,
    #: pretrained: openai}``); null: the recipe's backbone serves both guidance and identity.
    identity_backbone: Section | None = nested_section("backbone", optional=True)

    def check_enhancer(self) -> None:
        """Refuse an unknown network or an empty level list, naming the key."""
        if self.network not in NETWORKS:
            raise LitConfigError(f"adapter.network must be one of {', '.join(NETWORKS)}; got {self.network!r}")
        if self.identity_levels is not None and not self.identity_levels:
            raise LitConfigError("adapter.identity_levels must name at least one level, or be null for the default")


@dataclass
class ClipLitConfig(EnhancerConfig):
    """``clip-lit``: a learned prompt pair in token space (the whole 77-position embedding of each prompt)."""

    #: Words repeated to initialise both prompts (CLIP-LIT: 16 times "X").
    init_word: str = "X"
    init_repeats: int = 16

    def __post_init__(self) -> None:
        self.check_enhancer()
        _positive("adapter", "init_repeats", self.init_repeats, "how often init_word starts each prompt")


@dataclass
class ClipLitLatentConfig(EnhancerConfig):
    """``clip-lit-latent``: two free vectors in the joint space; no text tower needed."""

    def __post_init__(self) -> None:
        self.check_enhancer()


@dataclass
class RaveConfig(EnhancerConfig):
    """``rave``: guidance along the residual vector between well-lit and backlit mean image embeddings."""

    #: RAVE-shifted: project out the direction u of the tokens nearest and farthest from v_res.
    shifted: bool = False
    #: Tokens at each end of the ranking that make u (the paper: 15).
    shift_tokens: int = 15

    def __post_init__(self) -> None:
        self.check_enhancer()
        _positive("adapter", "shift_tokens", self.shift_tokens, "tokens at each end of the vocabulary ranking")


@dataclass
class StageConfig:
    """The keys both protocols share: identity warm-up, enhancement, data roles, the written grid."""

    #: Identity warm-up: iterations, batch, weight of L_id (its level weights are all 1).
    warmup_iterations: int = 1000
    warmup_batch_size: int = 8
    warmup_identity_weight: float = 25.0
    #: Warm-up restart: after this many iterations, a mean Y-PSNR(input, output) below ``restart_psnr``
    #: re-initialises the network with a new seed (at most ``max_restarts`` times).
    restart_check_iterations: int = 100
    restart_psnr: float = 8.0
    max_restarts: int = 3
    #: Enhancement stages: iterations, batch, weight of L_id (its levels weighted 1, 1, 1, 1, 0.5).
    enhance_iterations: int = 2100
    enhance_batch_size: int = 8
    identity_weight: float = 22.5
    #: Unpaired data: the class folders of the backlit inputs and the well-lit references.
    backlit_class: str = "backlit"
    well_lit_class: str = "well-lit"
    #: Test images shown in the before/after grid every run writes (``before-after.png``).
    grid_images: int = 6

    def check_stages(self) -> None:
        """Refuse non-positive lengths and batches and negative weights, naming the key."""
        for key in (
            "warmup_iterations",
            "warmup_batch_size",
            "enhance_iterations",
            "enhance_batch_size",
            "grid_images",
        ):
            _positive("protocol", key, getattr(self, key), "a count")
        for key in ("restart_check_iterations", "max_restarts"):
            _positive("protocol", key, getattr(self, key), "a count; 0 switches the restart rule off", True)
        for key in ("warmup_identity_weight", "identity_weight", "restart_psnr"):
            _non_negative("protocol", key, getattr(self, key), "a weight or a threshold")


@dataclass
class RaveProtocolConfig(StageConfig):
    """``rave``: one frozen pass for the residual, identity warm-up, then one enhancement stage."""

    #: Weight of L_guid = mean (cos - t)^2 (RAVE: 6 x 320).
    guidance_weight: float = 1920.0

    def __post_init__(self) -> None:
        self.check_stages()
        _non_negative("protocol", "guidance_weight", self.guidance_weight, "the weight of L_guid")


@dataclass
class ClipLitProtocolConfig(StageConfig):
    """``clip-lit``: prompt initialisation, identity warm-up, then rounds of enhancement and prompt refinement."""

    prompt_init_iterations: int = 8000
    prompt_init_batch_size: int = 16
    #: Rounds of (enhancement, prompt refinement); CLIP-LIT trains about 50K iterations in all.
    rounds: int = 13
    prompt_iterations: int = 1000
    prompt_batch_size: int = 16
    #: Weights of L_clip (enhancement) and L_rank (prompt refinement).
    clip_weight: float = 320.0
    rank_weight: float = 200.0
    #: Earlier enhanced outputs the ranking uses (CLIP-LIT: the newest two).
    cached_outputs: int = 2
    #: Side of the prompt stages' augmented views (CLIP-LIT: every image resized to 256 x 256 first).
    prompt_view_size: int = 256

    def __post_init__(self) -> None:
        self.check_stages()
        for key in (
            "prompt_init_iterations",
            "prompt_init_batch_size",
            "rounds",
            "prompt_iterations",
            "prompt_batch_size",
            "prompt_view_size",
        ):
            _positive("protocol", key, getattr(self, key), "a count")
        for key in ("clip_weight", "rank_weight"):
            _non_negative("protocol", key, getattr(self, key), "a loss weight")
        if self.cached_outputs not in (0, 1, 2):
            raise LitConfigError(
                f"protocol.cached_outputs must be 0, 1 or 2 (CLIP-LIT's margins exist for those); "
                f"got {self.cached_outputs!r}"
            )
