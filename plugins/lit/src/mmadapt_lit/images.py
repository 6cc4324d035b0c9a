"""Image helpers: luma, the no-reference exposure proxies, PNG files and the before/after grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmadapt import image_psnr
from PIL import Image

#: BT.601 luma weights of RGB in [0, 1] (full range: Y in [0, 1]), for the exposure proxies.
LUMA = (0.299, 0.587, 0.114)
#: The exposure proxies' thresholds on Y: under-exposed below, over-exposed above.
UNDER_EXPOSED = 0.1
OVER_EXPOSED = 0.95
#: Height of each picture in the before/after grid (pixels); wider images keep their aspect ratio.
GRID_HEIGHT = 160


def luma(image: torch.Tensor) -> torch.Tensor:
    """Y (…, 1, H, W) of RGB images (…, 3, H, W) in [0, 1]."""
    weights = image.new_tensor(LUMA).view(3, 1, 1)
    return (image * weights).sum(dim=-3, keepdim=True)


def reference_scores(images, references, prefix: str = "") -> dict[str, torch.Tensor]:
    """Per-image PSNR (RGB and Y, capped at 100 dB) and SSIM (torchmetrics) of images against references."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    scores: dict[str, list[float]] = {"psnr": [], "psnr_y": [], "ssim": []}
    for image, reference in zip(images, references):
        image, reference = image.detach().double().clamp(0, 1).cpu(), reference.detach().double().cpu()
        scores["psnr"].append(image_psnr(image, reference))
        scores["psnr_y"].append(image_psnr(image, reference, "y"))
        scores["ssim"].append(float(structural_similarity_index_measure(image[None], reference[None], data_range=1.0)))
    return {f"{prefix}{key}": torch.tensor(values) for key, values in scores.items()}


class ExposureMetric:
    """``lit-exposure``: mean luminance and the fractions of pixels with Y < 0.1 and Y > 0.95 of the outputs.

    No reference needed, so it scores unpaired test images too. Each image counts equally.
    """

    inputs = {"outputs": ("images",), "batch": ()}

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.sums = {"mean_luminance": 0.0, "under_exposed": 0.0, "over_exposed": 0.0}
        self.count = 0

    def update(self, outputs: dict, batch: dict) -> None:
        """Add each output image's proxies."""
        for image in outputs["images"]:
            y = luma(image.detach().float().clamp(0, 1))
            self.sums["mean_luminance"] += float(y.mean())
            self.sums["under_exposed"] += float((y < UNDER_EXPOSED).float().mean())
            self.sums["over_exposed"] += float((y > OVER_EXPOSED).float().mean())
            self.count += 1

    def compute(self) -> dict[str, float]:
        """The mean of each proxy over the images seen (NaN for none)."""
        return {key: value / self.count if self.count else math.nan for key, value in self.sums.items()}


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image (rounded)."""
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array))


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a (3, H, W) tensor in [0, 1] as a PNG file."""
    to_pil(image).save(path, format="PNG")


def draw_grid(rows: Sequence[Sequence[torch.Tensor]], path: Path) -> None:
    """:func:`grid_image` of ``rows`` saved to ``path`` (PNG)."""
    grid_image(rows).save(path, format="PNG")


def grid_image(rows: Sequence[Sequence[torch.Tensor]]) -> Image.Image:
    """One row per example (input, output, target ...), each picture scaled to :data:`GRID_HEIGHT` pixels."""
    pictures = [[_scaled(to_pil(image)) for image in row] for row in rows]
    gap = 4
    width = max(sum(p.width for p in row) + gap * (len(row) - 1) for row in pictures)
    canvas = Image.new("RGB", (width, len(pictures) * (GRID_HEIGHT + gap) - gap), (255, 255, 255))
    for r, row in enumerate(pictures):
        x = 0
        for picture in row:
            canvas.paste(picture, (x, r * (GRID_HEIGHT + gap)))
            x += picture.width + gap
    return canvas


def _scaled(picture: Image.Image) -> Image.Image:
    width = max(1, round(picture.width * GRID_HEIGHT / picture.height))
    return picture.resize(
        (width, GRID_HEIGHT), Image.Resampling.NEAREST if picture.height < GRID_HEIGHT else Image.Resampling.BILINEAR
    )
