"""Config dataclasses of the recipe's fixed sections, the base class of dataset configs, the recipe
checks that config dataclasses share (:func:`check_choice`, :func:`check_prompt_context`), and the
fields by which a component's config holds sections of other components (:func:`nested_section`).

This module imports nothing heavy: plugins import it at registration time. The checks raise
``ValueError`` from a config's ``__post_init__``; the recipe loader turns it into an error naming
the recipe file and key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def check_choice(owner: str, key: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` naming the key when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{owner}.{key} must be one of {', '.join(map(str, choices))}; got {value!r}")


#: Field metadata key under which :func:`nested_section` and :func:`nested_sections` mark a field.
NESTED_SECTION = "mmadapt.nested_section"


@dataclass(frozen=True)
class NestedSection:
    """What a nested-section field of a component config holds: sections of one component ``kind``."""

    kind: str
    #: A list of sections (``nested_sections``) rather than one.
    many: bool = False
    #: One section that may be left out or ``null`` (then the field is ``None``).
    optional: bool = False


def nested_section(kind: str, *, optional: bool = False) -> Any:
    """Declare a config field holding one section of a component of ``kind`` (``backbone``, ``dataset``...).

    In the recipe the key takes what a top-level section takes (``{name: ..., **options}`` or a bare
    name). Recipe validation checks it once, against that component's config, with the same
    messages (file, key path such as ``adapter.identity_backbone.arch``, the closest valid key), and
    sets the field to a validated :class:`mmadapt.Section`: ``.build(*args)`` builds the component.
    ``resolved.yaml`` holds the section with every default, so resuming sees a changed default.
    ``optional``: the key may be left out or ``null`` (the field is then ``None``); otherwise the
    key is required and the field keyword-only. Only fields of a component's own config are nested
    sections, not fields of dataclasses inside it::

        identity_backbone: Section | None = nested_section("backbone", optional=True)
    """
    metadata = {NESTED_SECTION: NestedSection(kind, optional=optional)}
    if optional:
        return field(default=None, metadata=metadata)
    return field(kw_only=True, metadata=metadata)


def nested_sections(kind: str) -> Any:
    """Declare a config field holding a list of sections of components of ``kind``, empty by default.

    Each entry is checked like :func:`nested_section` checks one (key paths such as
    ``protocol.datasets[1].root``); the field holds a list of validated :class:`mmadapt.Section`::

        datasets: list[Section] = nested_sections("dataset")
    """
    return field(default_factory=list, metadata={NESTED_SECTION: NestedSection(kind, many=True)})


def nested_section_fields(config_cls: type) -> dict[str, NestedSection]:
    """The nested-section fields of a config dataclass, by name (empty for anything else)."""
    if not dataclasses.is_dataclass(config_cls):
        return {}
    return {f.name: f.metadata[NESTED_SECTION] for f in dataclasses.fields(config_cls) if NESTED_SECTION in f.metadata}


@dataclass
class DataConfig:
    """Keys every dataset accepts; dataset configs subclass this."""

    #: Few-shot sampling: this many training images per class (Dassl's rule), ``None`` for all.
    shots: int | None = None
    #: What to do with an unreadable image: ``error`` stops naming the file, ``skip`` counts it.
    on_bad_image: str = "error"
    #: Training augmentation: ``none`` (test transform) or ``crop-flip`` (random resized crop + flip;
    #: image-to-image tasks: one random crop + flip shared by ``image`` and ``target``, see ``split_transforms``).
    augment: str = "none"
    #: YAML or JSON file of class descriptions (and optional keywords) overriding the dataset's own,
    #: class by class; every class needs one (``mmadapt.apply_knowledge``).
    knowledge_file: str | None = None

    def __post_init__(self) -> None:
        check_choice("data", "on_bad_image", self.on_bad_image, ("error", "skip"))
        check_choice("data", "augment", self.augment, ("none", "crop-flip"))
        if self.shots is not None and self.shots < 1:
            raise ValueError(f"data.shots must be a positive number of images per class; got {self.shots}")


@dataclass
class TrainConfig:
    """The recipe's ``train:`` section."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 5e-4
    #: ``cosine`` (Dassl's cosine after a constant warm-up) or ``constant``.
    schedule: str = "cosine"
    #: Step the schedule once per ``epoch`` (Dassl) or once per optimiser ``step``.
    schedule_unit: str = "epoch"
    warmup_epochs: int = 0
    warmup_lr: float = 1e-5
    #: ``fp32``, ``bf16``, ``fp16`` or ``auto`` (fp16 on CUDA, fp32 elsewhere).
    precision: str = "auto"
    grad_accum: int = 1
    num_workers: int = 0
    clip_grad_norm: float | None = None
    #: Per parameter group overrides, e.g. ``{low_rank: {lr: 0.01}}``; groups are named by the adapter.
    param_groups: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Write a checkpoint every this many epochs; keep the newest ``keep_checkpoints``.
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    log_every: int = 10
    #: Split each global batch into this many shards whose gradients are summed in a fixed order, so the
    #: run is the same bits on any process count that divides it (docs/multi-gpu.md); 0: DDP's average.
    exact_shards: int = 0

    def __post_init__(self) -> None:
        check_choice("train", "optimizer", self.optimizer, ("sgd", "adamw", "adam"))
        check_choice("train", "schedule", self.schedule, ("cosine", "constant"))
        check_choice("train", "schedule_unit", self.schedule_unit, ("epoch", "step"))
        check_choice("train", "precision", self.precision, ("fp32", "bf16", "fp16", "auto"))
        for key in ("epochs", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "log_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be at least 1; got {getattr(self, key)}")
        if self.exact_shards < 0:
            raise ValueError(f"train.exact_shards must be 0 (off) or a number of shards; got {self.exact_shards}")


@dataclass
class EvalConfig:
    """The recipe's ``eval:`` section."""

    #: Metric names, or ``{name: ..., <option>: ...}`` mappings for metrics with options.
    metrics: list[Any] = field(default_factory=lambda: ["accuracy"])
    batch_size: int = 100


@dataclass
class RecipeSchema:
    """The top level of a recipe. Component sections are validated against their component's config."""

    name: str = "run"
    description: str = ""
    seed: int = 1
    #: Distributions the recipe needs, as pip requirement strings (``mmadapt-prompts>=0.1``).
    requires: list[str] = field(default_factory=list)
    backbone: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    adapter: dict[str, Any] = field(default_factory=dict)
    objective: dict[str, Any] = field(default_factory=lambda: {"name": "cross-entropy"})
    protocol: dict[str, Any] = field(default_factory=lambda: {"name": "standard"})
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


#: Recipe sections that name a registered component, with the component kind each one names.
COMPONENT_SECTIONS = {
    "backbone": "backbone",
    "data": "dataset",
    "adapter": "adapter",
    "objective": "objective",
    "protocol": "protocol",
}


#: Where a :class:`mmadapt.PromptLearner` puts the class name relative to the learned context.
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


def check_prompt_context(n_ctx: int | None, init: str | None, position: str, section: str = "adapter") -> None:
    """Raise ``ValueError`` for a context length below 1, blank init words or an unknown position.

    ``n_ctx`` and ``init`` are the recipe keys :func:`mmadapt.new_context` reads,
    ``position`` is ``class_token_position``; ``section`` names the recipe section in the message.
    """
    check_choice(section, "class_token_position", position, CLASS_TOKEN_POSITIONS)
    if n_ctx is not None and n_ctx < 1:
        raise ValueError(f"{section}.n_ctx must be at least 1; got {n_ctx}")
    if init is not None and not init.strip():
        raise ValueError(f"{section}.init is empty; give words such as 'a photo of a', or null for a random context")
