"""Config dataclasses of the lane plugin's components: the schema of their recipe sections.

Cheap to import (no torch): the plugin module imports them at registration time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mmadapt import check_choice

#: ``B{base}-C{increment}``: the first task holds ``base`` classes (``increment`` when 0), then
#: ``increment`` classes per task.
SPLIT_PATTERN = re.compile(r"B(\d+)-C(\d+)")
CLASS_ORDERS = ("alphabetical", "dataset", "seeded", "given")


def parse_split(spec: str, key: str = "protocol.split") -> tuple[int, int]:
    """``(base, increment)`` of a split spec such as ``B0-C10``; ``ValueError`` naming ``key`` otherwise."""
    match = SPLIT_PATTERN.fullmatch(str(spec))
    if match is None:
        raise ValueError(f"{key} must look like B<base>-C<increment> (B0-C10, B40-C10); got {spec!r}")
    base, increment = int(match.group(1)), int(match.group(2))
    if increment < 1:
        raise ValueError(f"{key}: the increment C must be at least 1; got {spec!r}")
    return base, increment


@dataclass
class ClassIncrementalConfig:
    """``protocol: class-incremental``: tasks cut from a class order by a ``B{b}-C{c}`` split spec."""

    #: ``B{base}-C{increment}``: the first task holds ``base`` classes (``increment`` classes when
    #: ``base`` is 0), every further task ``increment`` classes.
    split: str = "B0-C10"
    #: ``alphabetical`` (class names sorted, the MULTI-LANE convention), ``dataset`` (the dataset's own
    #: class ids: ImageNet-R's WordNet-id folders, CIFAR-100's label ids), ``seeded`` (a permutation of
    #: the sorted names drawn with ``order_seed``) or ``given`` (``classes``, every class once).
    class_order: str = "alphabetical"
    order_seed: int = 0
    #: The class names in task order, for ``class_order: given``.
    classes: list[str] = field(default_factory=list)
    #: Sigmoid threshold of CF1/OF1 (multi-label data; single-label data is scored by top-1 accuracy).
    threshold: float = 0.8
    train_split: str = "train"
    test_split: str = "test"

    def __post_init__(self) -> None:
        parse_split(self.split)
        check_choice("protocol", "class_order", self.class_order, CLASS_ORDERS)
        if self.class_order == "given" and not self.classes:
            raise ValueError("protocol.class_order: given needs protocol.classes, the class names in task order")
        if self.classes and self.class_order != "given":
            raise ValueError(
                f"protocol.classes is set but protocol.class_order is {self.class_order!r}; "
                "set class_order: given to use it, or drop classes"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"protocol.threshold must be between 0 and 1 (a sigmoid score); got {self.threshold}")


@dataclass
class JointConfig(ClassIncrementalConfig):
    """``protocol: joint``: the same tasks, trained all at once in one stage (the upper bound)."""


@dataclass
class MultiLaneConfig:
    """``adapter: multi-lane``: one lane per task over summarised patch tokens, a shared head."""

    #: S, selector tokens per lane (with ``summary: merge``, the merged tokens per layer).
    num_selectors: int = 20
    #: P, key and value prompt tokens per prompted layer.
    prompt_length: int = 20
    #: L_p, the first layers that get prompts.
    prompt_layers: int = 5
    #: ``concat``: every seen lane, each masked to its class block; ``task``: the lane whose key is
    #: closest to the frozen class token (L2P-style key matching).
    inference: str = "concat"
    #: ``selectors`` (learned selectors), ``merge`` (token merging in place of selectors) or ``full``
    #: (a full-token lane: the lane runs on every image token, no summarisation).
    summary: str = "selectors"
    #: Discard the summaries after attention and give the selector slots back their LN1 values.
    drop_and_replace: bool = True
    #: L2-normalise the lane's class token before the head.
    prehead_norm: bool = True
    #: At a task's start, copy the previous task's selectors, prompts (and key) into its slot.
    warm_start: bool = True
    #: Run all seen lanes as one batch (faster on accelerators). Off: lanes run one after another,
    #: so an old lane's logits do not depend on how many lanes run (bit-identical across tasks).
    batch_lanes: bool = False
    #: Weight of the key-matching term (``inference: task``): ``-weight * cos(key_t, query)``.
    key_weight: float = 1.0

    def __post_init__(self) -> None:
        check_choice("adapter", "inference", self.inference, ("concat", "task"))
        check_choice("adapter", "summary", self.summary, ("selectors", "merge", "full"))
        if self.num_selectors < 1 and self.summary != "full":
            raise ValueError(f"adapter.num_selectors must be at least 1; got {self.num_selectors}")
        for key in ("prompt_length", "prompt_layers"):
            if getattr(self, key) < 0:
                raise ValueError(f"adapter.{key} must be non-negative; got {getattr(self, key)}")
        if self.key_weight < 0:
            raise ValueError(f"adapter.key_weight must be non-negative; got {self.key_weight}")


@dataclass
class SeqPromptConfig:
    """``adapter: seq-prompt``: one shared key/value prompt fine-tuned task after task, a shared head."""

    #: P, key and value prompt tokens per prompted layer.
    prompt_length: int = 20
    #: L_p, the first layers that get prompts.
    prompt_layers: int = 5
    #: L2-normalise the class token before the head.
    prehead_norm: bool = True

    def __post_init__(self) -> None:
        for key in ("prompt_length", "prompt_layers"):
            if getattr(self, key) < 0:
                raise ValueError(f"adapter.{key} must be non-negative; got {getattr(self, key)}")


@dataclass
class LaneBceConfig:
    """``objective: lane-bce``: BCE with logits, where the logits and targets of every class outside the
    current task are set to 0 (only the current task's labels are visible)."""


@dataclass
class LaneCeConfig:
    """``objective: lane-ce``: softmax cross-entropy where the logits of every class outside the current
    task are -inf (a classification among the current task's classes), for single-label data."""
