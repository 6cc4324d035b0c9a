"""The recipe sections of mmadapt-deep's adapters and objectives. Cheap to import: dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

from .templates import PROMPTSRC_TEMPLATES


def check_depth_and_init(depth: int, init: str | None) -> None:
    """Raise ``ValueError`` for a negative depth or blank init words."""
    if depth < 0:
        raise ValueError(f"adapter.depth is the number of prompted layers, 0 or more; got {depth}")
    if init is not None and not init.strip():
        raise ValueError("adapter.init is empty; give words such as 'a photo of a', or null for random text prompts")


@dataclass
class IvlpConfig:
    """Independent vision-language prompts: learned text and image tokens at each of the first ``depth`` layers."""

    #: Text tokens per layer, n_t. At the first layer they replace the first n_t tokens of ``init``.
    n_text: int = 2
    #: Image tokens per layer, n_v, appended after the patch tokens.
    n_visual: int = 2
    #: J: prompted layers of each tower, 1 .. J (at most the shallower tower's depth); 0 is CLIP itself.
    depth: int = 9
    #: Words of the text prompt ("a photo of a"); the first n_text of their tokens are learned, the rest stay
    #: as words before the class name. null: n_text tokens drawn from N(0, 0.02) and no words.
    init: str | None = "a photo of a"
    #: Hand-written templates of the frozen text features (regularisers); null: the dataset's templates.
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_depth_and_init(self.depth, self.init)
        if self.n_text < 0 or self.n_visual < 0:
            raise ValueError(f"adapter.n_text and adapter.n_visual are token counts, 0 or more; "
                             f"got {self.n_text} and {self.n_visual}")


@dataclass
class MapleConfig:
    """MaPLe: learned text tokens at each of the first ``depth`` layers; the image tokens are a linear
    function (one per layer) of the text tokens of the same layer."""

    #: Text tokens per layer, n; at the first layer they replace the first n tokens of ``init``.
    n_ctx: int = 2
    #: J: prompted layers of each tower, 1 .. J (at most the shallower tower's depth); 0 is CLIP itself.
    depth: int = 9
    #: Words of the text prompt; the first n_ctx of their tokens are learned. null: N(0, 0.02), no words.
    init: str | None = "a photo of a"
    #: Hand-written templates of the frozen text features (regularisers); null: the dataset's templates.
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_depth_and_init(self.depth, self.init)
        if self.n_ctx < 1:
            raise ValueError(f"adapter.n_ctx must be at least 1 (MaPLe couples text tokens to image tokens); "
                             f"got {self.n_ctx}")


# -- PromptSRC -------------------------------------------------------------------------------------


@dataclass
class PromptSRCObjectiveConfig:
    """PromptSRC's loss: cross-entropy plus L1 pulls of the prompted text and image features toward frozen
    CLIP's and a KL pull of the prompted logits toward CLIP's zero-shot logits."""

    #: Weight of the L1 distance between prompted and frozen text features (the paper's 25).
    text_weight: float = 25.0
    #: Weight of the L1 distance between prompted and frozen image features (the paper's 10).
    image_weight: float = 10.0
    #: Weight of the KL divergence from the zero-shot to the prompted class distribution (the code's 1).
    logits_weight: float = 1.0
    #: Softmax temperature of both distributions in the KL term (the code's 1); the term is scaled by its square.
    temperature: float = 1.0

    def __post_init__(self) -> None:
        for key in ("text_weight", "image_weight", "logits_weight"):
            if getattr(self, key) < 0:
                raise ValueError(f"objective.{key} is a loss weight, 0 or more; got {getattr(self, key)}")
        if not self.temperature > 0:
            raise ValueError(f"objective.temperature must be positive; got {self.temperature}")


@dataclass
class PromptSRCConfig(IvlpConfig):
    """PromptSRC's prompts: IVLP with n_t = n_v = 4 tokens at J = 9 layers, averaged over the epochs of
    training by Gaussian prompt aggregation (GPA)."""

    n_text: int = 4
    n_visual: int = 4
    depth: int = 9
    #: Hand-written templates of frozen CLIP's text features (the text regulariser's target); default: the 60
    #: CLIP ImageNet templates PromptSRC averages over; null: the dataset's templates.
    templates: list[str] | None = field(default_factory=lambda: list(PROMPTSRC_TEMPLATES))
    #: Average the prompts over epochs with Gaussian weights (GPA); false keeps the last epoch's prompts.
    gpa: bool = True
    #: Epoch (counted from 1) at the centre of GPA's Gaussian weights (the paper's 15 of 20 epochs).
    gpa_mean: float = 15.0
    #: Standard deviation of GPA's Gaussian weights, in epochs (the paper's 1).
    gpa_std: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gpa_std > 0:
            raise ValueError(f"adapter.gpa_std is the width of GPA's Gaussian in epochs and must be positive; "
                             f"got {self.gpa_std}")
