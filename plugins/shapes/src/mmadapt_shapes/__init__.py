"""ShapesWorld procedural data and the ``shapes-clip`` model pretrained on it.

Importing the package is cheap (numpy only); model code in :mod:`mmadapt_shapes.model`,
:mod:`mmadapt_shapes.pretrain` and :mod:`mmadapt_shapes.evaluate` imports torch when called.
"""

from .captions import caption
from .tasks import TASKS, Item, Task, get_task
from .world import (
    BACKGROUNDS,
    COLOURS,
    LIGHTINGS,
    POSITIONS,
    SHAPES,
    SIZES,
    TEXTURES,
    Scene,
    ShapeObject,
    item_rng,
    render,
    sample_scene,
)

__version__ = "0.1.0"

__all__ = [
    "BACKGROUNDS",
    "COLOURS",
    "LIGHTINGS",
    "POSITIONS",
    "SHAPES",
    "SIZES",
    "TASKS",
    "TEXTURES",
    "Item",
    "Scene",
    "ShapeObject",
    "Task",
    "caption",
    "get_task",
    "item_rng",
    "render",
    "sample_scene",
]
