"""The enhancement networks: parameter counts, any size in and out, outputs in [0, 1], CLIP-LIT's identity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt_lit.networks import ClipLitNet, _PyramidPooling, build_network

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


#: CLIP-LIT's padding of each 3x3 conv, (training, evaluation): it trains a zero-padded network and
#: evaluates a reflect-padded one, except the pyramid's fusing conv (zeros in both) and the residual
#: blocks (reflection in both).
CLIP_LIT_PADDING = {
    "stem.0": ("constant", "reflect"),
    "body.3": ("constant", "constant"),
    "body.5": ("constant", "reflect"),
    "body.8": ("constant", "reflect"),
    "head": ("constant", "reflect"),
    **{f"body.{i}.{conv}": ("reflect", "reflect") for i in (0, 1, 6, 7, 9, 10) for conv in ("first", "second")},
}


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_every_conv_pads_as_clip_lit_does_in_training_and_in_evaluation(training):
    torch.manual_seed(0)
    network = ClipLitNet().train(training)
    convs = {name: module for name, module in network.named_modules()
             if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3)}
    assert set(convs) == set(CLIP_LIT_PADDING)
    for name, conv in convs.items():
        images = torch.rand(1, conv.in_channels, 9, 11)
        mode = CLIP_LIT_PADDING[name][0 if training else 1]
        expected = F.conv2d(F.pad(images, (1, 1, 1, 1), mode=mode), conv.weight, conv.bias)
        torch.testing.assert_close(conv(images), expected, msg=f"{name} in {'training' if training else 'evaluation'}")


def test_the_pyramid_upsamples_linearly_between_the_corner_pixels():
    # align_corners=True: a 2-cell row upsampled to 4 pixels runs linearly from the first cell's value
    # at the first pixel to the second's at the last (align_corners=False gives 1, 1.5, 2.5, 3).
    pyramid = _PyramidPooling(4)
    with torch.no_grad():
        for branch in pyramid.branches:
            branch[0].weight.zero_()
            branch[0].weight[0, 0] = 1.0
    images = torch.ones(1, 4, 4, 4)
    images[..., 2:] = 3.0
    with torch.no_grad():
        two_cells = pyramid(images)[0, 4 + pyramid.BINS.index(2)]
    torch.testing.assert_close(two_cells, torch.tensor([1.0, 5 / 3, 7 / 3, 3.0]).expand(4, 4))


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
