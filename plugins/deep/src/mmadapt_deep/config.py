"""The recipe sections of mmadapt-deep's adapters and objectives. Cheap to import: dataclasses."""

from __future__ import annotations

from dataclasses import dataclass


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
