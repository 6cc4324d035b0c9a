"""Enhancement networks: full-resolution RGB in [0, 1] of any H x W in, the same size out, in [0, 1].

- ``clip-lit-net``: CLIP-LIT's illumination-map network (Liang et al., ICCV 2023): a single-scale
  residual CNN predicts a one-channel map L and the output is ``clamp(I / (L + 1e-9), 0, 1)``.
- ``zero-dce``: Zero-DCE's curve estimation (Li et al., CVPR 2020): 24 maps, eight steps of
  ``x <- x + a x (1 - x)`` with per-channel a.
- ``zero-dce++``: Zero-DCE++ (Li et al., TPAMI 2021): depthwise-separable convolutions estimate one
  3-channel a at 1/12 scale, applied eight times.
- ``unet``: a small diffusers ``UNet2DModel`` (timestep fixed at 0) predicting a residual added to the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import NETWORKS

#: Added to the illumination map before dividing (CLIP-LIT's epsilon).
ILLUMINATION_EPS = 1e-9
#: Curve steps of Zero-DCE and Zero-DCE++.
CURVE_STEPS = 8


class _ResidualBlock(nn.Module):
    """conv -> LeakyReLU -> conv -> + input -> LeakyReLU; bias-free 3x3 convs padded by reflection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False)
        self.second = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, the same shape as ``x``."""
        y = self.second(F.leaky_relu(self.first(x), 0.2))
        return F.leaky_relu(x + y, 0.2)


class _PlainConv(nn.Conv2d):
    """A 3x3 conv padded with zeros in training and by reflection in evaluation (CLIP-LIT's plain convs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad one pixel (zeros or reflection, by mode), then convolve."""
        x = F.pad(x, (1, 1, 1, 1), mode="constant" if self.training else "reflect")
        return super().forward(x)


class _PyramidPooling(nn.Module):
    """Average-pool to 1, 2, 3 and 6 cells, 1x1 conv to ``channels // 4``, PReLU, bilinear upsample, concat.

    The upsampling aligns the corner cells' centres with the corner pixels (``align_corners=True``),
    as CLIP-LIT's pyramid module does.
    """

    BINS = (1, 2, 3, 6)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels // 4, 1, bias=False), nn.PReLU()) for _ in self.BINS
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the four pooled branches appended as channels (2x the channels)."""
        size = x.shape[-2:]
        pooled = [
            F.interpolate(branch(F.adaptive_avg_pool2d(x, bins)), size=size, mode="bilinear", align_corners=True)
            for bins, branch in zip(self.BINS, self.branches)
        ]
        return torch.cat([x, *pooled], dim=1)


class ClipLitNet(nn.Module):
    """CLIP-LIT's illumination network: 278,790 parameters, output ``clamp(I / (L + 1e-9), 0, 1)``.

    Padding as in CLIP-LIT, which trains a zero-padded copy of the network and evaluates a
    reflect-padded one with the same weights: the stem, the widening and narrowing convs and the head
    pad with zeros in training and by reflection in evaluation; the residual blocks always reflect;
    the conv fusing the pyramid's branches always pads with zeros.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        wide = 2 * width
        self.stem = nn.Sequential(_PlainConv(3, width, 3), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(
            _ResidualBlock(width),
            _ResidualBlock(width),
            _PyramidPooling(width),
            nn.Conv2d(wide, width, 3, padding=1, bias=False),
            nn.PReLU(),
            _PlainConv(width, wide, 3),
            _ResidualBlock(wide),
            _ResidualBlock(wide),
            _PlainConv(wide, width, 3),
            _ResidualBlock(width),
            _ResidualBlock(width),
        )
        self.head = _PlainConv(width, 1, 3)
        # CLIP-LIT draws conv weights from N(0, 0.02). The head's bias starts at 1 so L starts near 1:
        # with a bias near 0, L is about 0.05, I / L saturates at 1 wherever I > L and no gradient flows.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
        nn.init.ones_(self.head.bias)

    def illumination(self, images: torch.Tensor) -> torch.Tensor:
        """The map L (B, 1, H, W) >= 0 of images (B, 3, H, W)."""
        return F.relu(self.head(self.body(self.stem(images))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Enhanced images: the input divided by its illumination map, clamped to [0, 1].

        The division runs in at least fp32 (fp32 out for fp16 or bf16 input or autocast): the epsilon
        is 0 in fp16, where a black pixel under a zero map would give 0 / 0.
        """
        dtype = torch.promote_types(images.dtype, torch.float32)
        illumination = self.illumination(images).to(dtype)
        return (images.to(dtype) / (illumination + ILLUMINATION_EPS)).clamp(0.0, 1.0)


def apply_curves(images: torch.Tensor, alphas: list[torch.Tensor]) -> torch.Tensor:
    """Zero-DCE's light-enhancement curve ``x <- x + a x (1 - x)``, once per map in ``alphas``.

    Each ``a`` in [-1, 1] keeps pixels in [0, 1], so the output is bounded by construction; the final
    clamp only removes rounding.
    """
    x = images
    for alpha in alphas:
        x = x + alpha * x * (1.0 - x)
    return x.clamp(0.0, 1.0)


class ZeroDce(nn.Module):
    """Zero-DCE: seven 3x3 convs of 32 channels with skips (3,4), (2,5), (1,6); 79,416 parameters."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv2d(3, width, 3, padding=1)]
            + [nn.Conv2d(width, width, 3, padding=1) for _ in range(3)]
            + [nn.Conv2d(2 * width, width, 3, padding=1) for _ in range(2)]
            + [nn.Conv2d(2 * width, 3 * CURVE_STEPS, 3, padding=1)]
        )

    def curve_maps(self, images: torch.Tensor) -> torch.Tensor:
        """The 24 curve parameter maps in [-1, 1] (eight steps x RGB)."""
        x1 = F.relu(self.convs[0](images))
        x2 = F.relu(self.convs[1](x1))
        x3 = F.relu(self.convs[2](x2))
        x4 = F.relu(self.convs[3](x3))
        x5 = F.relu(self.convs[4](torch.cat([x3, x4], 1)))
        x6 = F.relu(self.convs[5](torch.cat([x2, x5], 1)))
        return torch.tanh(self.convs[6](torch.cat([x1, x6], 1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Enhanced images: eight curve steps, each with its own per-pixel RGB parameters."""
        return apply_curves(images, list(self.curve_maps(images).split(3, dim=1)))


class _SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1 convolution, both with bias (Zero-DCE++)."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(
            nn.Conv2d(channels_in, channels_in, 3, padding=1, groups=channels_in),
            nn.Conv2d(channels_in, channels_out, 1),
        )


class ZeroDcePlusPlus(nn.Module):
    """Zero-DCE++: Zero-DCE's layout with separable convs and one shared 3-channel map at 1/12 scale; 10,561 params."""

    def __init__(self, width: int = 32, scale: int = 12) -> None:
        super().__init__()
        self.scale = scale
        self.convs = nn.ModuleList(
            [_SeparableConv(3, width)]
            + [_SeparableConv(width, width) for _ in range(3)]
            + [_SeparableConv(2 * width, width) for _ in range(2)]
            + [_SeparableConv(2 * width, 3)]
        )

    def curve_map(self, images: torch.Tensor) -> torch.Tensor:
        """The one curve parameter map (B, 3, H, W) in [-1, 1], estimated at 1/scale and upsampled."""
        size = images.shape[-2:]
        small = tuple(max(1, round(side / self.scale)) for side in size)
        x = F.interpolate(images, size=small, mode="bilinear", align_corners=False) if self.scale > 1 else images
        x1 = F.relu(self.convs[0](x))
        x2 = F.relu(self.convs[1](x1))
        x3 = F.relu(self.convs[2](x2))
        x4 = F.relu(self.convs[3](x3))
        x5 = F.relu(self.convs[4](torch.cat([x3, x4], 1)))
        x6 = F.relu(self.convs[5](torch.cat([x2, x5], 1)))
        alpha = torch.tanh(self.convs[6](torch.cat([x1, x6], 1)))
        return F.interpolate(alpha, size=size, mode="bilinear", align_corners=False) if self.scale > 1 else alpha

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Enhanced images: the same curve map applied eight times."""
        alpha = self.curve_map(images)
        return apply_curves(images, [alpha] * CURVE_STEPS)


class UNetEnhancer(nn.Module):
    """A diffusers ``UNet2DModel`` as an enhancer: ``clamp(I + unet(I, t=0), 0, 1)`` at any size.

    Three resolutions (32, 64, 64 channels), convolutions only. The input is reflect-padded to a
    multiple of the UNet's downsampling factor and the output cropped back. The last conv starts at
    zero, so an untrained enhancer returns its input.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 64, 64), layers_per_block: int = 1) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.unet = UNet2DModel(
            in_channels=3,
            out_channels=3,
            block_out_channels=channels,
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) * len(channels),
            up_block_types=("UpBlock2D",) * len(channels),
            norm_num_groups=8,
            # No self-attention in the middle block: at 1/4 resolution it is quadratic in the pixels
            # (a 1024² image gives 65,536 tokens), and a local enhancer does not need it.
            add_attention=False,
        )
        self.factor = 2 ** (len(channels) - 1)
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Enhanced images of the input's size."""
        height, width = images.shape[-2:]
        pad_h, pad_w = -height % self.factor, -width % self.factor
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
        residual = self.unet(x * 2.0 - 1.0, 0).sample[..., :height, :width]
        return (images + residual).clamp(0.0, 1.0)


def build_network(name: str) -> nn.Module:
    """The enhancement network called ``name`` (one of :data:`NETWORKS`)."""
    if name == "clip-lit-net":
        return ClipLitNet()
    if name == "zero-dce":
        return ZeroDce()
    if name == "zero-dce++":
        return ZeroDcePlusPlus()
    if name == "unet":
        return UNetEnhancer()
    raise ValueError(f"unknown enhancement network {name!r}; choose one of {', '.join(NETWORKS)}")
