"""ShapesWorld tasks: class names, deterministic items, zero-shot templates and class knowledge.

Item ``index`` of ``split`` with ``seed`` is drawn from ``item_rng(seed, SPLITS[split], task code,
index)``, so items are reproducible one at a time, and the splits (and tasks) use distinct random
streams. Pretraining draws from its own stream (:data:`PRETRAIN_STREAM`), never from these.

``colour-shape`` has a fixed base/novel split: class (colour *i*, shape *j*) in the order of
``world.COLOURS`` and ``world.SHAPES`` is *base* when ``i + j`` is even and *novel* otherwise (a
checkerboard, so every colour and every shape occurs in both halves). Class names list the base
classes first, each half sorted, so the first half of ``classnames`` is exactly the base set.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .captions import SHAPE_WORDS
from .world import COLOURS, SHAPES, Scene, item_rng, render, sample_scene, stylise

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
PRETRAIN_STREAM = 1000  # stream code for pretraining pairs; distinct from every split code

SHAPE_KNOWLEDGE: dict[str, str] = {
    "circle": "a circle is a perfectly round shape with no corners and no straight edges",
    "square": "a square has four equal straight sides and four right-angled corners",
    "triangle": "a triangle has three straight sides and three corners, with one tip pointing up",
    "star": "a star has five pointed tips arranged around a centre",
    "heart": "a heart has two rounded lobes on top that meet in a point at the bottom",
    "cross": "a cross is a plus sign made of two equal bars crossing at the centre",
    "diamond": "a diamond is a rhombus standing on one tip, taller than it is wide",
    "hexagon": "a hexagon has six equal straight sides and six corners",
    "pentagon": "a pentagon has five equal straight sides with one corner pointing up",
    "ring": "a ring is a round band with a round hole in the middle, like a donut",
    "crescent": "a crescent is a curved sliver shaped like a new moon, its points facing right",
    "arrow": "an arrow is a straight shaft ending in a triangular head that points right",
}

COLOUR_KNOWLEDGE: dict[str, str] = {
    "red": "red like a ripe tomato",
    "orange": "orange like the fruit",
    "yellow": "yellow like a lemon",
    "green": "green like fresh grass",
    "cyan": "cyan, a bright blue-green like tropical water",
    "blue": "deep blue like the sea",
    "purple": "purple like a violet flower",
    "pink": "pink like candy floss",
    "brown": "brown like chocolate",
    "white": "white like snow",
}

#: Class names of ``shape-codenames``, one per shape in the order of ``world.SHAPES``: made-up words
#: that no pretraining caption uses, so the names carry nothing and the descriptions carry the class.
SHAPE_CODENAMES: tuple[str, ...] = (
    "dax", "blicket", "wug", "toma", "fep", "zorb", "gazzer", "lorp", "mib", "pimwit", "vonk", "tufa",
)

LIGHTING_KNOWLEDGE: dict[str, str] = {
    "well-lit": "a well-lit scene is lit evenly from the front, so colours are bright and clear",
    "backlit": "a backlit scene has a bright, washed-out background with the subject in dark silhouette",
}

SHAPE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a rendering of a {} shape.",
    "a picture of a {}.",
    "a drawing of a {}.",
    "a {}.",
)
LIGHTING_TEMPLATES: tuple[str, ...] = (
    "a {} photo.",
    "a {} photo of a shape.",
    "a {} image.",
    "a {} picture of an object.",
)


def _colour_shape_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(base, novel) class names of the compositional task, each sorted."""
    base, novel = [], []
    for i, colour in enumerate(COLOURS):
        for j, shape in enumerate(SHAPES):
            (base if (i + j) % 2 == 0 else novel).append(f"{colour} {shape}")
    return tuple(sorted(base)), tuple(sorted(novel))


@dataclass(frozen=True)
class Item:
    """One example: ``image`` is HxWx3 uint8, or a (backlit, well-lit) pair for ``backlit-pairs``;
    ``label`` is a class index, or a multi-hot ``uint8`` vector for multi-label tasks."""

    image: np.ndarray | tuple[np.ndarray, np.ndarray]
    label: int | np.ndarray
    scene: Scene


@dataclass(frozen=True)
class Task:
    """A ShapesWorld task definition."""

    name: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    knowledge: dict[str, str]
    make_scene: Callable[[np.random.Generator, int], Scene] = field(repr=False)
    multilabel: bool = False
    paired: bool = False
    base_classes: tuple[str, ...] = ()
    novel_classes: tuple[str, ...] = ()
    style: str = "normal"

    @property
    def code(self) -> int:
        """Stable integer that separates this task's random stream from other tasks'."""
        return zlib.crc32(self.name.encode())

    def _rng(self, index: int, split: str, seed: int) -> np.random.Generator:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLITS)}")
        return item_rng(seed, SPLITS[split], self.code, index)

    def scene(self, index: int, split: str = "train", seed: int = 0,
              classes: Sequence[int] | None = None) -> tuple[Scene, int | np.ndarray]:
        """Return (scene, label) of one item.

        ``classes`` restricts single-label items to those class indices (e.g. the base classes);
        labels always index the full ``classnames``.
        """
        rng = self._rng(index, split, seed)
        if self.multilabel:
            scene = self.make_scene(rng, -1)
            label = np.zeros(len(self.classnames), dtype=np.uint8)
            label[[self.classnames.index(s) for s in scene.shapes]] = 1
            return scene, label
        pool = range(len(self.classnames)) if classes is None else classes
        label = int(pool[int(rng.integers(len(pool)))])
        return self.make_scene(rng, label), label

    def item(self, index: int, split: str = "train", seed: int = 0, size: int = 64,
             classes: Sequence[int] | None = None) -> Item:
        """Return one rendered item; deterministic in (seed, split, index)."""
        scene, label = self.scene(index, split, seed, classes)
        if self.paired:
            image = (render(scene, size), render(replace(scene, lighting="well-lit"), size))
        else:
            image = stylise(render(scene, size), self.style)
        return Item(image=image, label=label, scene=scene)

    def class_indices(self, names: Sequence[str]) -> list[int]:
        """Indices of ``names`` in ``classnames``."""
        return [self.classnames.index(n) for n in names]


def _shape_task() -> Task:
    return Task(
        name="shape", classnames=SHAPES, templates=SHAPE_TEMPLATES, knowledge=dict(SHAPE_KNOWLEDGE),
        make_scene=lambda rng, y: sample_scene(rng, shape=SHAPES[y], lighting="well-lit"),
    )


def _shape_low_light_task() -> Task:
    # The shape task in a shifted rendering style: dim, noisy images that captions rarely describe
    # by colour, so zero-shot transfer is weaker and adaptation has room to help.
    return Task(
        name="shape-low-light", classnames=SHAPES, templates=SHAPE_TEMPLATES,
        knowledge=dict(SHAPE_KNOWLEDGE),
        make_scene=lambda rng, y: sample_scene(rng, shape=SHAPES[y], lighting="low-light"),
    )


def _shape_negative_task() -> Task:
    # The shape task as photographic negatives, a style never seen in pretraining: the shapes are
    # intact but every colour and the contrast polarity are flipped.
    return Task(
        name="shape-negative", classnames=SHAPES, templates=SHAPE_TEMPLATES, knowledge=dict(SHAPE_KNOWLEDGE),
        make_scene=lambda rng, y: sample_scene(rng, shape=SHAPES[y], lighting="well-lit"), style="negative",
    )


def _shape_upside_down_task() -> Task:
    # The shape task seen by an upside-down camera: colours and textures are as in pretraining, but
    # the orientation cues it learned (triangle tip up, crescent facing right) are reversed.
    return Task(
        name="shape-upside-down", classnames=SHAPES, templates=SHAPE_TEMPLATES,
        knowledge=dict(SHAPE_KNOWLEDGE),
        make_scene=lambda rng, y: sample_scene(rng, shape=SHAPES[y], lighting="well-lit"), style="upside-down",
    )


def _shape_codenames_task() -> Task:
    # Knowledge is what carries the classes, as for fine-grained datasets whose names mean little to
    # CLIP: code names the captions never use, described in the caption words for their shape.
    names = SHAPE_CODENAMES
    knowledge = {}
    for name, shape in zip(names, SHAPES):
        canonical, *synonyms = SHAPE_WORDS[shape]
        also = " or a ".join(synonyms)
        knowledge[name] = f"a {name} is a {canonical}, also called a {also}; {SHAPE_KNOWLEDGE[shape]}"
    return Task(
        name="shape-codenames", classnames=names, templates=SHAPE_TEMPLATES, knowledge=knowledge,
        make_scene=lambda rng, y: sample_scene(rng, shape=SHAPES[y], lighting="well-lit"),
    )


def _colour_shape_task() -> Task:
    base, novel = _colour_shape_classes()
    names = base + novel

    def make(rng: np.random.Generator, y: int) -> Scene:
        colour, shape = names[y].split(" ")
        return sample_scene(rng, shape=shape, colour=colour, lighting="well-lit")

    knowledge = {}
    for name in names:
        colour, shape = name.split(" ")
        knowledge[name] = f"a {name}: {SHAPE_KNOWLEDGE[shape]}, coloured {COLOUR_KNOWLEDGE[colour]}"
    return Task(name="colour-shape", classnames=names, templates=SHAPE_TEMPLATES, knowledge=knowledge,
                make_scene=make, base_classes=base, novel_classes=novel)


def _multilabel_task() -> Task:
    def make(rng: np.random.Generator, _: int) -> Scene:
        return sample_scene(rng, count=int(rng.integers(1, 5)), lighting="well-lit")

    return Task(name="multilabel", classnames=SHAPES, templates=SHAPE_TEMPLATES,
                knowledge=dict(SHAPE_KNOWLEDGE), make_scene=make, multilabel=True)


def _lighting_task() -> Task:
    names = ("well-lit", "backlit")
    return Task(
        name="lighting", classnames=names, templates=LIGHTING_TEMPLATES,
        knowledge=dict(LIGHTING_KNOWLEDGE),
        make_scene=lambda rng, y: sample_scene(rng, lighting=names[y]),
    )


def _backlit_pairs_task() -> Task:
    def make(rng: np.random.Generator, y: int) -> Scene:
        return sample_scene(rng, shape=SHAPES[y], lighting="backlit")

    return Task(name="backlit-pairs", classnames=SHAPES, templates=SHAPE_TEMPLATES,
                knowledge=dict(SHAPE_KNOWLEDGE), make_scene=make, paired=True)


_FACTORIES: dict[str, Callable[[], Task]] = {
    "shape": _shape_task,
    "shape-low-light": _shape_low_light_task,
    "shape-negative": _shape_negative_task,
    "shape-upside-down": _shape_upside_down_task,
    "shape-codenames": _shape_codenames_task,
    "colour-shape": _colour_shape_task,
    "multilabel": _multilabel_task,
    "lighting": _lighting_task,
    "backlit-pairs": _backlit_pairs_task,
}
TASKS: tuple[str, ...] = tuple(_FACTORIES)
#: Alternative spellings accepted by :func:`get_task`.
ALIASES: dict[str, str] = {"color-shape": "colour-shape", "colors-shapes": "colour-shape",
                           "colours-shapes": "colour-shape", "shapes": "shape"}


def get_task(name: str) -> Task:
    """Return the task called ``name`` (see :data:`TASKS`)."""
    key = ALIASES.get(name, name)
    if key not in _FACTORIES:
        raise KeyError(f"unknown ShapesWorld task {name!r}; available: {', '.join(TASKS)}")
    return _FACTORIES[key]()
