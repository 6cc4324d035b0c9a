"""The recipe sections of mmadapt-deep's adapters and objectives. Cheap to import: dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

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
