"""Gaussian prompt aggregation: normalised Gaussian weights per epoch, the weighted mean of the per-epoch
parameters at the stage's end, and sums that survive a save and load between epochs."""

from __future__ import annotations

import math

import pytest
import torch
from mmadapt_deep.aggregation import GaussianPromptAggregation, gaussian_epoch_weights
from torch import nn


def density(x: float, mean: float, std: float) -> float:
    """The normal density as PromptSRC's code writes it, normalising constant included."""
    return math.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


@pytest.mark.parametrize(("epochs", "mean", "std"), [(20, 15, 1), (5, 3.5, 2), (10, 6, 10), (4, 40, 1), (3, 100, 0.1)])
def test_weights_are_the_normalised_density_at_each_epoch(epochs, mean, std):
    weights = gaussian_epoch_weights(epochs, mean, std)
    assert weights.shape == (epochs,) and float(weights.sum()) == pytest.approx(1.0, abs=1e-12)
    hand = [density(e, mean, std) for e in range(1, epochs + 1)]
    if sum(hand) > 0:
        assert weights.tolist() == pytest.approx([h / sum(hand) for h in hand], rel=1e-9, abs=1e-12)
    else:  # every density underflows in double precision: all the weight on the epoch nearest the mean
        assert weights.tolist() == [0.0] * (epochs - 1) + [1.0]


def test_the_papers_setting_puts_its_weight_on_epochs_13_to_17():
    weights = gaussian_epoch_weights(20, 15, 1)
    assert int(weights.argmax()) + 1 == 15
    assert float(weights[12:17].sum()) > 0.99


def test_a_std_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="std must be positive"):
        GaussianPromptAggregation([nn.Parameter(torch.zeros(2))], mean=15, std=0)


def run_epochs(aggregation: GaussianPromptAggregation, parameters: list[nn.Parameter], epochs: int,
               first: int = 1, seed: int = 0) -> list[list[torch.Tensor]]:
    """Give the parameters new random values each epoch (as training would), step the aggregation, keep snapshots."""
    generator = torch.Generator().manual_seed(seed)
    seen = []
    for epoch in range(first, epochs + 1):
        with torch.no_grad():
            for parameter in parameters:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) + epoch)
        seen.append([p.detach().clone() for p in parameters])
        aggregation.step(epoch, epochs)
    return seen


def test_the_final_parameters_are_the_weighted_mean_of_the_per_epoch_parameters():
    parameters = [nn.Parameter(torch.zeros(4, 3)), nn.Parameter(torch.zeros(2, 5))]
    aggregation = GaussianPromptAggregation(parameters, mean=3.5, std=1.5)
    seen = run_epochs(aggregation, parameters, epochs=6)
    weights = gaussian_epoch_weights(6, 3.5, 1.5)
    for index, parameter in enumerate(parameters):
        expected = sum(w * snapshot[index].double() for w, snapshot in zip(weights, seen))
        assert torch.allclose(parameter.double(), expected, atol=1e-6)
        # Not simply the last epoch's values, nor their plain mean.
        assert not torch.allclose(parameter, seen[-1][index], atol=1e-3)
        assert not torch.allclose(parameter, torch.stack([s[index] for s in seen]).mean(0), atol=1e-3)


def test_a_new_stage_starts_new_sums():
    parameter = nn.Parameter(torch.zeros(3))
    aggregation = GaussianPromptAggregation([parameter], mean=2, std=1)
    run_epochs(aggregation, [parameter], epochs=3, seed=1)
    seen = run_epochs(aggregation, [parameter], epochs=2, seed=2)
    weights = gaussian_epoch_weights(2, 2, 1)
    expected = weights[0] * seen[0][0].double() + weights[1] * seen[1][0].double()
    assert torch.allclose(parameter.double(), expected, atol=1e-6)


def test_sums_saved_between_epochs_and_loaded_into_a_fresh_aggregation_give_the_same_result():
    generator = torch.Generator().manual_seed(0)
    draws = [torch.randn(4, generator=generator) for _ in range(6)]

    def train(aggregation: GaussianPromptAggregation, parameter: nn.Parameter, epochs: range) -> None:
        for epoch in epochs:
            with torch.no_grad():
                parameter.copy_(draws[epoch - 1])
            aggregation.step(epoch, 6)

    full = nn.Parameter(torch.zeros(4))
    train(GaussianPromptAggregation([full], 4, 1), full, range(1, 7))
    # Killed after epoch 3: a fresh parameter and aggregation, loaded from what the checkpoint holds.
    first = nn.Parameter(torch.zeros(4))
    before_kill = GaussianPromptAggregation([first], 4, 1)
    train(before_kill, first, range(1, 4))
    saved = {name: tensor.clone() for name, tensor in before_kill.state_dict().items()}
    assert list(saved) == ["running_0"]
    resumed = nn.Parameter(torch.zeros(4))
    after_kill = GaussianPromptAggregation([resumed], 4, 1)
    after_kill.load_state_dict(saved)
    train(after_kill, resumed, range(4, 7))
    assert torch.equal(resumed, full)
