"""Image helpers: per-image reference scores, PNG files and the before/after grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmadapt import image_psnr
from PIL import Image

#: Height of each picture in the before/after grid (pixels); wider images keep their aspect ratio.
GRID_HEIGHT = 160


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
