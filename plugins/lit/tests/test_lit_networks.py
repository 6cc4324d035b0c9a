"""The enhancement networks: parameter counts, any size in and out, outputs in [0, 1], CLIP-LIT's identity."""

from __future__ import annotations

import pytest
import torch
from mmadapt_lit.networks import ClipLitNet, build_network

COUNTS = {"clip-lit-net": 278_790, "zero-dce": 79_416, "zero-dce++": 10_561}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_are_the_papers(name):
    assert sum(p.numel() for p in build_network(name).parameters()) == COUNTS[name]


@pytest.mark.parametrize(
    ("name", "training"),
    [("clip-lit-net", True), ("clip-lit-net", False), ("zero-dce", False), ("zero-dce++", False), ("unet", False)],
)
def test_odd_sizes_come_out_at_their_size_in_the_unit_range(name, training):
    torch.manual_seed(0)
    network = build_network(name).train(training)
    # Extreme pixels too: the curve and the division must both stay in range.
    images = torch.rand(2, 3, 97, 131)
    images[0, :, :10] = 0.0
    images[1, :, :10] = 1.0
    with torch.no_grad():
        out = network(images)
    assert out.shape == images.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, images) or name == "unet"  # the untrained UNet starts as the identity


def test_an_illumination_map_of_one_returns_the_input():
    network = ClipLitNet().double()
    torch.nn.init.zeros_(network.head.weight)
    torch.nn.init.ones_(network.head.bias)
    images = torch.rand(1, 3, 33, 47, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(network.illumination(images), torch.ones(1, 1, 33, 47, dtype=torch.float64))
        torch.testing.assert_close(network(images), images, atol=1e-9, rtol=0)


def test_plain_convs_pad_with_zeros_in_training_and_by_reflection_in_evaluation():
    torch.manual_seed(0)
    network = ClipLitNet()
    images = torch.rand(1, 3, 20, 24)
    stem = network.stem[0]
    trained, evaluated = stem.train()(images), stem.eval()(images)
    # Same weights: the interior agrees, the border differs with the padding.
    torch.testing.assert_close(trained[..., 1:-1, 1:-1], evaluated[..., 1:-1, 1:-1])
    assert not torch.allclose(trained[..., 0, :], evaluated[..., 0, :])


def test_the_untrained_unet_is_the_identity_and_it_has_gradients():
    torch.manual_seed(0)
    network = build_network("unet")
    images = torch.rand(1, 3, 19, 23) * 0.8 + 0.1
    out = network(images)
    torch.testing.assert_close(out, images)
    out.mean().backward()
    assert network.unet.conv_out.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_a_black_pixel_under_a_zero_illumination_map_stays_black_under_autocast(dtype):
    # 1e-9 is 0 in fp16: dividing there gave 0 / 0 = NaN at every black pixel the map calls unlit.
    network = ClipLitNet()
    torch.nn.init.zeros_(network.head.weight)
    torch.nn.init.zeros_(network.head.bias)
    images = torch.rand(1, 3, 16, 16)
    images[..., :4, :4] = 0.0
    images.requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype):
        assert torch.equal(network.illumination(images), torch.zeros(1, 1, 16, 16, dtype=dtype))
        out = network(images)
    assert torch.isfinite(out).all()
    assert torch.equal(out[..., :4, :4], torch.zeros(1, 3, 4, 4))
    out.sum().backward()
    assert torch.isfinite(images.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in network.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["clip-lit-net", "zero-dce", "zero-dce++", "unet"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_every_network_trains_with_finite_outputs_and_gradients_under_autocast(name, dtype):
    torch.manual_seed(0)
    network = build_network(name).train()
    images = torch.rand(2, 3, 24, 24)
    images[0] = 0.0
    images[1, :, :8] = 1.0
    with torch.autocast("cpu", dtype=dtype):
        out = network(images)
        loss = ((out.float() - 0.6) ** 2).mean()
    loss.backward()
    assert out.shape == images.shape and torch.isfinite(out).all() and torch.isfinite(loss)
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
