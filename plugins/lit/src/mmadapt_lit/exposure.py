"""The ``lit-exposure`` metric: no-reference exposure proxies of enhanced images."""

from __future__ import annotations

import math

import torch
from mmadapt import Metric

#: BT.601 luma weights of RGB in [0, 1] (full range: Y in [0, 1]), for the exposure proxies.
LUMA = (0.299, 0.587, 0.114)
#: The exposure proxies' thresholds on Y: under-exposed below, over-exposed above.
UNDER_EXPOSED = 0.1
OVER_EXPOSED = 0.95


def luma(image: torch.Tensor) -> torch.Tensor:
    """Y (…, 1, H, W) of RGB images (…, 3, H, W) in [0, 1]."""
    weights = image.new_tensor(LUMA).view(3, 1, 1)
    return (image * weights).sum(dim=-3, keepdim=True)



class ExposureMetric(Metric):
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
