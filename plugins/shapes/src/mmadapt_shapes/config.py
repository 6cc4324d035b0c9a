"""The ``data:`` section of the ``shapes`` dataset and the ``backbone:`` section of ``shapes-clip``.

Cheap to import (no torch): the plugin module imports them at registration time.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt import DataConfig, check_choice

from .tasks import ALIASES, TASKS


@dataclass
class ShapesConfig(DataConfig):
    """Generated ShapesWorld images of one task; the same seed always gives the same images."""

    #: ``shape``, ``shape-low-light``, ``shape-negative``, ``shape-upside-down``, ``colour-shape``,
    #: ``multilabel``, ``lighting`` or ``backlit-pairs``.
    task: str = "shape"
    #: Items per split; single-label classes are drawn uniformly, so each class gets about
    #: ``train_size / n_classes`` training images (few-shot sampling then takes ``shots`` of them).
    train_size: int = 2000
    val_size: int = 0
    test_size: int = 1000
    image_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data", "task", ALIASES.get(self.task, self.task), TASKS)
        for key in ("train_size", "test_size", "image_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"data.{key} must be positive; got {getattr(self, key)}")


@dataclass
class ShapesClipConfig:
    """The small CLIP pretrained on ShapesWorld captions, shipped with the plugin."""

    #: ``None`` for the shipped weights, or a ``.safetensors`` / pretraining checkpoint path.
    weights: str | None = None
