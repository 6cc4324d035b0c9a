"""The recipe sections of mmadapt-deep's adapters and objectives. Cheap to import: dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

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
