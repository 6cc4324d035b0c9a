"""CLIP-LIT's augmented views for the prompt stages: every item embedded afresh from a random view.

CLIP-LIT's prompt loaders resize each image to 256 x 256 (antialiased), then draw one geometry per
item and apply it to all of the item's images: a horizontal flip, a vertical flip and a transposition
(probability 1/2 each), a zoom about the centre by a factor in [0.5, 1.5] per axis (probability 0.3)
and a rotation about the centre by an angle in [-90, 90] degrees (probability 0.3), borders filled by
reflection. The draws use torch's global generator, which the engine seeds from the run's seed, the
stage, the epoch and the item's index, so an item's view is the same in every process and after a
resume, and differs from epoch to epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmadapt import Split
from PIL import Image

#: Probabilities of each flip and of the transposition, of the zoom and of the rotation.
FLIP_PROBABILITY = 0.5
ZOOM_PROBABILITY = 0.3
ROTATION_PROBABILITY = 0.3
#: The zoom factor's range (per axis) and the largest rotation (degrees either way).
ZOOM_RANGE = (0.5, 1.5)
MAX_ANGLE = 90.0


@dataclass
class Geometry:
    """One item's view: flips, transposition, zoom factors (x, y; 1 is none), rotation (degrees, counter-clockwise)."""

    flip_x: bool = False
    flip_y: bool = False
    transpose: bool = False
    zoom: tuple[float, float] = (1.0, 1.0)
    angle: float = 0.0


def draw_geometry() -> Geometry:
    """A random geometry from torch's global generator (every draw made, used or not, so draws stay aligned)."""
    chances = torch.rand(5).tolist()
    low, high = ZOOM_RANGE
    factors = (low + (high - low) * torch.rand(2)).tolist()
    angle = float(torch.rand(())) * 2 * MAX_ANGLE - MAX_ANGLE
    return Geometry(
        flip_x=chances[0] < FLIP_PROBABILITY,
        flip_y=chances[1] < FLIP_PROBABILITY,
        transpose=chances[2] < FLIP_PROBABILITY,
        zoom=(factors[0], factors[1]) if chances[3] < ZOOM_PROBABILITY else (1.0, 1.0),
        angle=angle if chances[4] < ROTATION_PROBABILITY else 0.0,
    )


def apply_geometry(views: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """``views`` (..., 3, S, S) flipped, transposed, zoomed, then rotated (bilinear, reflected borders)."""
    if geometry.flip_x:
        views = views.flip(-1)
    if geometry.flip_y:
        views = views.flip(-2)
    if geometry.transpose:
        views = views.transpose(-1, -2)
    zoom_x, zoom_y = geometry.zoom
    if (zoom_x, zoom_y) != (1.0, 1.0):
        views = _warp(views, [[1.0 / zoom_x, 0.0], [0.0, 1.0 / zoom_y]])
    if geometry.angle:
        # An output pixel reads the input at the inverse rotation; y points down, so a positive angle
        # turns the picture counter-clockwise as seen.
        cos, sin = math.cos(math.radians(geometry.angle)), math.sin(math.radians(geometry.angle))
        views = _warp(views, [[cos, -sin], [sin, cos]])
    return views


def _warp(views: torch.Tensor, inverse: list[list[float]]) -> torch.Tensor:
    """Resample square ``views`` about their centre: output point p reads the input at ``inverse @ p``."""
    shape = views.shape
    flat = views.reshape(-1, *shape[-3:])
    theta = torch.tensor([[*inverse[0], 0.0], [*inverse[1], 0.0]], dtype=flat.dtype).expand(len(flat), 2, 3)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    warped = F.grid_sample(flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped.reshape(shape)


def resized(image: Image.Image, size: int) -> torch.Tensor:
    """An RGB image resized to ``size`` x ``size`` (antialiased Lanczos), as 8-bit pixels (3, S, S)."""
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.LANCZOS)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def to_pixels(image: torch.Tensor) -> torch.Tensor:
    """A float image (3, H, W) in [0, 1] as the 8-bit image a PNG of it would hold."""
    return (image.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu()


#: Where a view comes from: an item's image of a split (split, index, key), or stored 8-bit pixels.
ViewSource = tuple[Split, int, str] | torch.Tensor


class PromptViews(Split):
    """The prompt stages' items: each a few images seen through one fresh random geometry.

    Item ``i`` is ``{"views": (R, 3, S, S)}`` in [0, 1] from its ``R`` sources (images of other splits,
    resized to S x S, or stored 8-bit pixels of that size), augmented alike by :func:`draw_geometry`.
    """

    def __init__(self, sources: list[list[ViewSource]], labels: list[int] | None, n_classes: int, size: int) -> None:
        super().__init__(labels if labels is not None else [None] * len(sources), n_classes)
        self.sources, self.size = sources, size

    def _load(self, i: int) -> dict[str, Any]:
        pixels = torch.stack([self._pixels(source) for source in self.sources[i]])
        return {"views": apply_geometry(pixels.float() / 255.0, draw_geometry())}

    def _pixels(self, source: ViewSource) -> torch.Tensor:
        if isinstance(source, torch.Tensor):
            return source
        split, index, key = source
        return resized(split.load(index)[key], self.size)
