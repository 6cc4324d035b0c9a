"""The recipe sections of the ``atlas`` adapter and the ``atlas-tta`` protocol. Cheap to import: dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AtlasConfig:
    """Task vectors over the image tower, composed with one learned coefficient per block and vector."""

    #: Task vector files (``adapt atlas vectors``), relative to the working directory unless absolute.
    vectors: list[str] = field(default_factory=list)
    #: One coefficient per vector for every block (the paper's isotropic ablation).
    isotropic: bool = False
    #: K: each block is split into K fixed random parts with a coefficient each (aTLAS x K).
    partitions: int = 1
    #: Seed of the random parts; the same seed gives the same parts when the run is rebuilt.
    partition_seed: int = 0
    #: Templates of the frozen zero-shot head, one ``{}`` for the class name; default: the dataset's.
    templates: list[str] | None = None
    #: Accept a vector fine-tuned on the run's own task (the paper composes only the other tasks').
    allow_own_task: bool = False

    def __post_init__(self) -> None:
        if not self.vectors:
            raise ValueError("adapter.vectors is empty; list task vector files made by `adapt atlas vectors`")
        if self.partitions < 1 or self.partitions > 255:
            raise ValueError(f"adapter.partitions is a number of parts per block, 1 to 255; got {self.partitions}")
        if self.isotropic and self.partitions > 1:
            raise ValueError("adapter.isotropic gives one coefficient per vector, which leaves nothing to partition; "
                             "set adapter.partitions to 1 or adapter.isotropic to false")


@dataclass
class TestTimeConfig:
    """``protocol: atlas-tta``: unlabelled adaptation on the evaluation split, then its evaluation."""

    #: The split adapted on (its labels are never read) and evaluated.
    split: str = "test"
    #: A weak view's prediction becomes a pseudo-label when its probability is at least this.
    threshold: float = 0.99
    #: Items per class kept as trusted: the most confident zero-shot predictions of that class.
    trusted_per_class: int = 8
    #: RandAugment operations and magnitude of the strong view (after a random resized crop, scale 0.5-1).
    strong_ops: int = 2
    strong_magnitude: int = 9
    #: Also evaluate before adapting (``initial/<split>/<metric>``): the zero-shot starting point.
    evaluate_initial: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"protocol.threshold is a probability in (0, 1]; got {self.threshold}")
        if self.trusted_per_class < 0:
            raise ValueError(f"protocol.trusted_per_class must be 0 or more; got {self.trusted_per_class}")
        if self.strong_ops < 0 or not 0 <= self.strong_magnitude <= 30:
            raise ValueError("protocol.strong_ops must be 0 or more and protocol.strong_magnitude 0 to 30 "
                             f"(RandAugment's bins); got {self.strong_ops} and {self.strong_magnitude}")
