"""mmadapt hooks of ShapesWorld: the ``shapes`` dataset, the ``shapes-clip`` backbone, ``adapt shapes``.

Cheap to import: configs and hooks only; torch and open_clip load inside the factories.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmadapt import DataConfig, check_choice, hookimpl

from .tasks import ALIASES, TASKS

if TYPE_CHECKING:
    from mmadapt import Backbone, DataBundle


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


def build_shapes(config: ShapesConfig) -> DataBundle:
    """The ``shapes`` dataset: the task's splits, rendered on demand."""
    from .dataset import build_bundle

    return build_bundle(config)


def build_shapes_clip(config: ShapesClipConfig) -> Backbone:
    """The ``shapes-clip`` backbone with the shipped or the given weights (torch loads here)."""
    from .backbone import build_backbone

    return build_backbone(config.weights)


def _add_shapes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("pretrain", "evaluate", "samples"),
                        help="pretrain shapes-clip, evaluate it zero-shot, or save sample image grids")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of the action (see --help of each)")


def _run_shapes(args: argparse.Namespace) -> int:
    import importlib

    module = {"pretrain": "pretrain", "evaluate": "evaluate", "samples": "samples"}[args.action]
    importlib.import_module(f"mmadapt_shapes.{module}").main(args.options)
    return 0


@hookimpl
def register_datasets(register: Callable[..., None]) -> None:
    """Register the ``shapes`` dataset."""
    register("shapes", build_shapes, ShapesConfig, "ShapesWorld: generated shapes, colours, lighting (offline)")


@hookimpl
def register_backbones(register: Callable[..., None]) -> None:
    """Register the ``shapes-clip`` backbone."""
    register("shapes-clip", build_shapes_clip, ShapesClipConfig, "small CLIP pretrained on ShapesWorld (offline)")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt shapes`` (pretrain, evaluate, samples)."""
    register("shapes", _run_shapes, "ShapesWorld: pretrain or evaluate shapes-clip, save sample grids",
             add_arguments=_add_shapes_arguments)
