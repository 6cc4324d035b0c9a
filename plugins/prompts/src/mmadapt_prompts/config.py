"""Recipe sections of the prompt plugin's components. Cheap to import: dataclasses and checks only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmadapt import check_prompt_context, nested_sections

if TYPE_CHECKING:
    from mmadapt import Section


@dataclass
class CoopConfig:
    """CoOp: a learned context before, around or after each class name."""

    #: Context tokens; null: 16, or the number of BPE tokens of ``init``.
    n_ctx: int | None = None
    #: Words whose token embeddings start the context ("a photo of a"); null: N(0, 0.02) draws.
    init: str | None = None
    #: One context per class (CoOp's class-specific context) instead of one shared by all classes.
    csc: bool = False
    #: Where the class name goes: ``end``, ``middle`` (between the context halves) or ``front``.
    class_token_position: str = "end"
    #: Hand-written templates for KgCoOp's targets; null: the dataset's templates.
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_prompt_context(self.n_ctx, self.init, self.class_token_position)
        if self.csc and self.init:
            # CoOp silently ignores CSC with a word init; refusing says what actually happens.
            raise ValueError("adapter.csc needs a random context; a word init (adapter.init) is shared by all classes")


@dataclass
class CocoopConfig:
    """CoCoOp: a shared context plus an image-conditioned bias from a small meta-net."""

    #: Context tokens; null: the number of BPE tokens of ``init`` (16 without one).
    n_ctx: int | None = None
    #: Words that start the context; CoCoOp's recipes use "a photo of a". null: N(0, 0.02) draws.
    init: str | None = "a photo of a"
    class_token_position: str = "end"
    #: Hand-written templates for KgCoOp's targets; null: the dataset's templates.
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_prompt_context(self.n_ctx, self.init, self.class_token_position)


@dataclass
class LatentPromptConfig:
    """Class vectors learned in the joint space, starting from zero-shot text features."""

    #: Hand-written templates of the initial (and new-class) vectors; null: the dataset's templates.
    templates: list[str] | None = None


@dataclass
class MvlptConfig(CoopConfig):
    """MVLPT's text prompt (MCoOp): CoOp with 16 context tokens, the class name in the middle,
    optionally started from the context of a finished (multitask) run."""

    class_token_position: str = "middle"
    #: A run directory of a coop/mvlpt run, or the parent folder of an ``adapt run --seeds`` run
    #: (its seeds' contexts are averaged); null: CoOp's initialisation.
    init_from: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_from is not None and (self.init or self.csc):
            raise ValueError("adapter.init_from gives the whole context; drop adapter.init and adapter.csc")


@dataclass
class MultitaskConfig:
    """Train one adapter on several datasets at once in a merged label space.

    The recipe's ``data:`` section is the first task; ``datasets`` lists the others, each a dataset
    section exactly as it would appear under ``data:``.
    """

    #: Further datasets, e.g. ``[{name: coop, root: ..., split_file: ..., shots: 16}]``.
    datasets: list[Section] = nested_sections("dataset")
    #: Softmax over each training image's own task's classes only (MVLPT's per-task masking).
    mask_logits: bool = True
