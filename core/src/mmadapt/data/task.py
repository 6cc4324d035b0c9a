"""What a dataset asks the model to do (:class:`Task`) and what a dataset plugin returns (:class:`DataBundle`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import check_choice
from ..errors import UserError

if TYPE_CHECKING:
    from .splits import Split

TASK_KINDS = ("single-label", "multi-label", "image-to-image")


@dataclass
class Task:
    """What a dataset asks the model to do."""

    classnames: list[str]
    #: ``single-label``, ``multi-label`` or ``image-to-image``.
    kind: str = "single-label"
    #: Zero-shot prompt templates; ``{}`` is replaced by the class name.
    templates: list[str] = field(default_factory=lambda: ["a photo of a {}."])
    #: Optional description text per class name (knowledge-aware prompting).
    knowledge: dict[str, str] | None = None
    name: str = ""
    #: Optional keywords per described class, best first (``mmadapt.apply_knowledge`` ranks them).
    keywords: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        check_choice("task", "kind", self.kind, TASK_KINDS)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classnames)

    @property
    def multi_label(self) -> bool:
        """Whether an image can have several positive classes."""
        return self.kind == "multi-label"


@dataclass
class DataBundle:
    """A task and its splits: ``train``, optional ``val``, ``test``."""

    task: Task
    splits: dict[str, Split]

    def split(self, name: str) -> Split:
        """The named split, or a ``UserError`` listing the splits this dataset has."""
        if name not in self.splits:
            raise UserError(
                f"dataset {self.task.name or '(unnamed)'} has no {name!r} split; it has: {', '.join(self.splits)}"
            )
        return self.splits[name]
