"""The prompt stages' augmented views: CLIP-LIT's draws, one geometry per item, the warps against PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmadapt_lit.views import Geometry, PromptViews, apply_geometry, draw_geometry
from PIL import Image


def smooth_image(size: int = 64) -> torch.Tensor:
    """A (3, S, S) image without symmetries and with gentle gradients (bilinear resampling is exact enough)."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([0.5 + 0.4 * torch.sin(3 * x + y), x * y, 0.3 + 0.5 * x**2 * (1 - y)])


def pil_warp(channel: torch.Tensor, zoom=(1.0, 1.0), angle: float = 0.0) -> torch.Tensor:
    """A channel zoomed about its centre (PIL's affine transform) or rotated (PIL's rotate), in float mode."""
    image = Image.fromarray(channel.numpy().astype(np.float32), mode="F")
    size = channel.shape[-1]
    if angle:
        image = image.rotate(angle, resample=Image.BILINEAR)
    else:
        (zx, zy), centre = zoom, size / 2
        data = (1 / zx, 0, centre - centre / zx, 0, 1 / zy, centre - centre / zy)
        image = image.transform((size, size), Image.AFFINE, data, resample=Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy())


@pytest.mark.parametrize("geometry", [Geometry(zoom=(1.4, 0.7)), Geometry(zoom=(0.6, 1.2)), Geometry(angle=37.0),
                                      Geometry(angle=-80.0)], ids=["zoom-in-x", "zoom-out-x", "ccw", "cw"])
def test_zoom_and_rotation_match_pils_transforms_away_from_the_borders(geometry):
    image = smooth_image()
    warped = apply_geometry(image, geometry)
    expected = torch.stack([pil_warp(c, geometry.zoom, geometry.angle) for c in image])
    inner = slice(20, 44)  # PIL fills outside the image; the views reflect there
    torch.testing.assert_close(warped[:, inner, inner], expected[:, inner, inner], atol=2e-2, rtol=0)


def test_flips_and_the_transposition_rearrange_pixels_exactly():
    image = smooth_image(8)
    geometry = Geometry(flip_x=True, flip_y=True, transpose=True)
    assert torch.equal(apply_geometry(image, geometry), image.flip(-1).flip(-2).transpose(-1, -2))
    assert torch.equal(apply_geometry(image, Geometry()), image)


def test_the_draws_have_clip_lits_probabilities_and_ranges():
    torch.manual_seed(0)
    draws = [draw_geometry() for _ in range(4000)]
    share = {name: np.mean([bool(getattr(g, name)) for g in draws]) for name in ("flip_x", "flip_y", "transpose")}
    assert all(abs(value - 0.5) < 0.03 for value in share.values()), share
    zoomed = [g.zoom for g in draws if g.zoom != (1.0, 1.0)]
    rotated = [g.angle for g in draws if g.angle]
    assert abs(len(zoomed) / 4000 - 0.3) < 0.03 and abs(len(rotated) / 4000 - 0.3) < 0.03
    assert min(min(z) for z in zoomed) >= 0.5 and max(max(z) for z in zoomed) <= 1.5
    assert min(rotated) >= -90 and max(rotated) <= 90 and min(rotated) < -80 and max(rotated) > 80


def test_an_item_draws_one_geometry_for_all_its_views_afresh_each_time_and_alike_under_one_seed():
    pixels = (smooth_image(16) * 255).round().to(torch.uint8)
    views = PromptViews([[pixels, pixels]], None, 0, 16)
    seen = []
    for seed in (3, 4, 3):
        torch.manual_seed(seed)  # the engine seeds each item's draws this way (run seed, stage, epoch, index)
        item = views[0]["views"]
        assert item.shape == (2, 3, 16, 16)
        assert torch.equal(item[0], item[1])  # the same source, so one shared geometry gives the same view
        seen.append(item)
    assert torch.equal(seen[0], seen[2]) and not torch.equal(seen[0], seen[1])


def test_an_item_of_another_split_is_resized_to_the_view_size(tmp_path):
    from mmadapt import FileSplit

    path = tmp_path / "wide.png"
    Image.fromarray((np.random.default_rng(0).random((30, 50, 3)) * 255).astype(np.uint8)).save(path)
    split = FileSplit([path], [None], 0)
    torch.manual_seed(0)
    item = PromptViews([[(split, 0, "image")]], [1], 2, 24)[0]
    assert item["views"].shape == (1, 3, 24, 24) and int(item["label"]) == 1
    assert float(item["views"].min()) >= 0.0 and float(item["views"].max()) <= 1.0
