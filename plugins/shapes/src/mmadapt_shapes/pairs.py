"""The (image, caption) distribution used to pretrain and to test retrieval.

Pretraining batches are built from *shape groups*: scenes that share every attribute (colour,
texture, size, position, background, lighting) except their shapes, captioned with the same wording
except for the shape words. Inside a group only the shape tells images and captions apart, which
forces the model to learn shape; with independent scenes, a contrastive model matches captions by
colour, lighting and background and learns shape very slowly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .captions import caption
from .tasks import PRETRAIN_STREAM, SPLITS
from .world import LIGHTINGS, SHAPES, Scene, item_rng, render, sample_scene

#: Lighting mix: mostly well-lit, with enough backlit and low-light scenes to learn both.
LIGHTING_WEIGHTS = {"well-lit": 0.5, "backlit": 0.25, "low-light": 0.25}
#: Probability of a single-object scene; the rest have 2-4 objects.
SINGLE_OBJECT = 0.75
#: Scenes per shape group in pretraining batches.
GROUP_SIZE = 4

#: Stream code for held-out retrieval captions (distinct from pretraining and from task splits).
RETRIEVAL_STREAM = 2000 + SPLITS["test"]


def _random_scene(rng: np.random.Generator) -> Scene:
    lighting = LIGHTINGS[int(rng.choice(len(LIGHTINGS), p=[LIGHTING_WEIGHTS[k] for k in LIGHTINGS]))]
    count = 1 if rng.random() < SINGLE_OBJECT else int(rng.integers(2, 5))
    return sample_scene(rng, lighting=lighting, count=count)


def sample_pair(seed: int, stream: int, index: int) -> tuple[Scene, str]:
    """Scene and caption of pair ``index`` of ``stream``; deterministic."""
    rng = item_rng(seed, stream, index)
    scene = _random_scene(rng)
    return scene, caption(scene, rng)


def with_shapes(scene: Scene, shapes: tuple[str, ...]) -> Scene:
    """``scene`` with its objects' shapes replaced, everything else unchanged."""
    objects = tuple(replace(o, shape=s) for o, s in zip(scene.objects, shapes, strict=True))
    return replace(scene, objects=objects)


def sample_group(seed: int, stream: int, index: int, size: int = GROUP_SIZE) -> list[tuple[Scene, str]]:
    """Shape group ``index`` of ``stream``: ``size`` scenes that differ only in their shapes."""
    rng = item_rng(seed, stream, index)
    base = _random_scene(rng)
    k = base.count
    if k == 1:
        picks = [(SHAPES[i],) for i in rng.permutation(len(SHAPES))[:size]]
    else:
        picks = []
        while len(picks) < size:
            shapes = tuple(SHAPES[i] for i in rng.permutation(len(SHAPES))[:k])
            if shapes not in picks:
                picks.append(shapes)
    scenes = [with_shapes(base, shapes) for shapes in picks]
    # The same caption generator state for every member gives the same wording and attributes.
    wording = int(rng.integers(2**63))
    return [(scene, caption(scene, np.random.default_rng(wording))) for scene in scenes]


def _render_all(pairs: list[tuple[Scene, str]], size: int) -> tuple[np.ndarray, list[str]]:
    images = np.empty((len(pairs), size, size, 3), dtype=np.uint8)
    for i, (scene, _) in enumerate(pairs):
        images[i] = render(scene, size)
    return images, [text for _, text in pairs]


def pair_batch(seed: int, stream: int, start: int, n: int, size: int = 64) -> tuple[np.ndarray, list[str]]:
    """Independent pairs ``start .. start+n-1`` as (uint8 NxHxWx3 images, captions)."""
    return _render_all([sample_pair(seed, stream, start + i) for i in range(n)], size)


def shape_labels(scenes: list[Scene]) -> np.ndarray:
    """Multi-hot (N x len(SHAPES)) ``uint8`` matrix of the shapes present in each scene."""
    labels = np.zeros((len(scenes), len(SHAPES)), dtype=np.uint8)
    for i, scene in enumerate(scenes):
        labels[i, [SHAPES.index(s) for s in scene.shapes]] = 1
    return labels


def pretrain_batch(step: int, batch_size: int, seed: int, size: int = 64) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The pretraining batch of ``step`` (``batch_size / GROUP_SIZE`` shape groups) as
    (uint8 NxHxWx3 images, captions, multi-hot shape labels).

    A pure function of its arguments, so resuming is exact.
    """
    if batch_size % GROUP_SIZE:
        raise ValueError(f"batch_size must be a multiple of {GROUP_SIZE}, got {batch_size}")
    groups = batch_size // GROUP_SIZE
    pairs = [p for g in range(groups) for p in sample_group(seed, PRETRAIN_STREAM, step * groups + g)]
    images, texts = _render_all(pairs, size)
    return images, texts, shape_labels([scene for scene, _ in pairs])
