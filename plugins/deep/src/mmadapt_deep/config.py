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


# -- MMRL ------------------------------------------------------------------------------------------


def _check_layer_range(key: str, value: list[int] | None) -> None:
    """A 1-based inclusive ``[first, last]`` block range; whether it fits a tower is checked against the tower."""
    if value is None:
        return
    if len(value) != 2 or not all(isinstance(i, int) for i in value) or not 1 <= value[0] <= value[1]:
        raise ValueError(
            f"adapter.{key} is [first, last], the blocks that get representation tokens, counted from 1 "
            f"(MMRL on ViT-B/16: [6, 12]); got {value}"
        )


@dataclass
class MmrlConfig:
    """MMRL: shared representation tokens projected into the upper blocks of both towers."""

    #: Representation tokens K (the paper's 5).
    n_tokens: int = 5
    #: Width of the shared representation space d_r (512; the official EuroSAT setting is 2048).
    dimension: int = 512
    #: Image-tower blocks [first, last] (counted from 1, inclusive) whose input gets the tokens;
    #: MMRL on ViT-B/16 uses [6, 12]. Also the text tower's, unless ``text_layers`` is given.
    layers: list[int] = field(default_factory=lambda: [6, 12])
    #: Text-tower blocks [first, last] for towers of another depth than the image tower; null: ``layers``.
    text_layers: list[int] | None = None
    #: The hand-written prompt around each class name; null: the dataset's first template.
    template: str | None = None
    #: Weight of the class-token logits in the logits of the trained classes (the rest goes to the
    #: representation logits); MMRL's alpha, 0.7.
    fusion_weight: float = 0.7
    #: Standard deviation of the representation tokens' initialisation.
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_tokens < 1 or self.dimension < 1:
            raise ValueError(
                f"adapter.n_tokens and adapter.dimension must be at least 1; got {self.n_tokens} and {self.dimension}"
            )
        _check_layer_range("layers", self.layers)
        _check_layer_range("text_layers", self.text_layers)
        if not 0.0 <= self.fusion_weight <= 1.0:
            raise ValueError(f"adapter.fusion_weight must lie in [0, 1]; got {self.fusion_weight}")
        if self.template is not None and "{}" not in self.template:
            raise ValueError(f"adapter.template must hold '{{}}' where the class name goes; got {self.template!r}")
        if self.init_std <= 0:
            raise ValueError(f"adapter.init_std must be positive; got {self.init_std}")


@dataclass
class MmrlLossConfig:
    """MMRL's loss: class_weight CE(class-token logits) + (1 - class_weight) CE(representation logits)
    + weight [(1 - cos(image, frozen image)) + (1 - cos(text, frozen text))]."""

    #: Share of the class-token cross-entropy (MMRL's alpha, 0.7); the representation one gets the rest.
    class_weight: float = 0.7
    #: The regulariser's weight lambda: 1.0 in MMRL's base config, per dataset in its recipes
    #: (EuroSAT 0.01 .. Stanford Cars 7.0).
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.class_weight <= 1.0:
            raise ValueError(f"objective.class_weight must lie in [0, 1]; got {self.class_weight}")
        if self.weight < 0:
            raise ValueError(f"objective.weight must be non-negative; got {self.weight}")
