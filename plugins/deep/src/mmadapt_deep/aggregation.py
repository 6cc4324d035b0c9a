"""Gaussian prompt aggregation (GPA, PromptSRC: Khattak et al., ICCV 2023): a weighted mean of parameters over epochs.

Epoch ``e`` of ``E`` gets the weight ``w_e = N(e; mean, std) / sum_k N(k; mean, std)``, ``k = 1 .. E``
(epochs count from 1, as in PromptSRC's code), so the weights sum to 1. At each epoch end the chosen
parameters are added to running sums with that weight; after the last epoch the parameters become the
sums, the weighted mean of the per-epoch parameters. PromptSRC uses ``mean = 15, std = 1`` over 20
epochs: nearly all the weight on epochs 13 .. 17.

The running sums are persistent buffers of the adapter that owns the aggregation, so every checkpoint
holds them and a run killed between epochs resumes to exactly the same result. The adapter calls
:meth:`GaussianPromptAggregation.step` from its ``on_epoch_end``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def gaussian_epoch_weights(epochs: int, mean: float, std: float) -> torch.Tensor:
    """The weights ``(epochs,)`` in float64 of epochs ``1 .. epochs``: a Gaussian density normalised to sum to 1.

    Computed from log-densities shifted by their maximum, so a mean far outside the epochs still gives
    finite weights (all on the epoch nearest the mean).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {epochs}")
    if not std > 0:
        raise ValueError(f"the Gaussian's std must be positive; got {std}")
    epoch = torch.arange(1, epochs + 1, dtype=torch.float64)
    log_density = -0.5 * ((epoch - mean) / std) ** 2
    weights = torch.exp(log_density - log_density.max())
    return weights / weights.sum()


class GaussianPromptAggregation(nn.Module):
    """Running Gaussian-weighted sums of chosen parameters, replacing them with the weighted mean at a stage's end.

    ``parameters`` are tensors the owning adapter trains; the sums are float32 buffers
    (``running_0``, ``running_1``, ... in the order given), persistent so checkpoints hold them. The
    sums restart at each stage's first epoch, so the mean covers one stage's epochs.
    """

    def __init__(self, parameters: Sequence[nn.Parameter], mean: float, std: float) -> None:
        super().__init__()
        if not parameters:
            raise ValueError("Gaussian prompt aggregation needs at least one parameter to average")
        gaussian_epoch_weights(1, mean, std)  # checks std before any training
        self.mean, self.std = mean, std
        # Not registered as parameters here: the adapter owns them (a list is not a submodule attribute).
        self._targets = list(parameters)
        for index, parameter in enumerate(self._targets):
            self.register_buffer(f"running_{index}", torch.zeros_like(parameter, dtype=torch.float32))

    def running_sums(self) -> list[torch.Tensor]:
        """The running weighted sums, one per parameter, in the order given."""
        return [getattr(self, f"running_{index}") for index in range(len(self._targets))]

    @torch.no_grad()
    def step(self, epoch: int, epochs: int) -> None:
        """Add the parameters with epoch ``epoch``'s weight; after the last one (``epoch == epochs``) load the mean."""
        if not 1 <= epoch <= epochs:
            raise ValueError(f"epoch {epoch} is outside the stage's epochs 1 .. {epochs}")
        weight = float(gaussian_epoch_weights(epochs, self.mean, self.std)[epoch - 1])
        for parameter, running in zip(self._targets, self.running_sums()):
            if epoch == 1:
                running.zero_()
            running.add_(parameter.detach().float(), alpha=weight)
            if epoch == epochs:
                parameter.copy_(running.to(parameter.dtype))
