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


def blown_out(image: torch.Tensor, target: torch.Tensor) -> float:
    """The share of pixels ``image`` pushes to white (Y > 0.95) that are not white (Y <= 0.95) in ``target``."""
    return float(((luma(image) > OVER_EXPOSED) & (luma(target) <= OVER_EXPOSED)).float().mean())


class ExposureMetric(Metric):
    """``lit-exposure``: mean luminance and the fractions of pixels with Y < 0.1 and Y > 0.95 of the outputs.

    No reference needed, so it scores unpaired test images too. Where the items have a ``target``
    it also reports ``blown_out``: the share of pixels the output pushes to white that are not white in
    the target (over-exposure an enhancer caused, not white the scene had). Each image counts equally.
    """

    inputs = {"outputs": ("images",), "batch": ()}

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.sums = {"mean_luminance": 0.0, "under_exposed": 0.0, "over_exposed": 0.0}
        self.count = 0
        self.blown_out = 0.0
        self.targets = 0

    def update(self, outputs: dict, batch: dict) -> None:
        """Add each output image's proxies."""
        targets = batch.get("target")
        for index, image in enumerate(outputs["images"]):
            image = image.detach().float().clamp(0, 1)
            y = luma(image)
            self.sums["mean_luminance"] += float(y.mean())
            self.sums["under_exposed"] += float((y < UNDER_EXPOSED).float().mean())
            self.sums["over_exposed"] += float((y > OVER_EXPOSED).float().mean())
            self.count += 1
            if targets is not None:
                self.blown_out += blown_out(image, targets[index].float())
                self.targets += 1

    def compute(self) -> dict[str, float]:
        """The mean of each proxy over the images seen (NaN for none); ``blown_out`` where targets were seen."""
        results = {key: value / self.count if self.count else math.nan for key, value in self.sums.items()}
        if self.targets:
            results["blown_out"] = self.blown_out / self.targets
        return results
