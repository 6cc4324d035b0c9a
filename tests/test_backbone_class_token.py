"""TokenImageTower.class_token: the class token as the first block would see it, minus its position."""

from __future__ import annotations

import pytest
import torch
from mmadapt.testing_models import tiny_openclip_backbone, tiny_timm_backbone


def _zero_class_position(backbone) -> None:
    """Zero the positional embedding of the class token (position 0), wherever the model keeps it."""
    model = backbone.model
    vit = getattr(model, "visual", model)
    with torch.no_grad():
        if hasattr(vit, "positional_embedding"):
            vit.positional_embedding[0].zero_()
        else:
            vit.pos_embed[0, 0].zero_()


@pytest.mark.parametrize("build", [tiny_openclip_backbone, tiny_timm_backbone], ids=["openclip", "timm"])
def test_class_token_is_the_first_token_when_its_position_is_zero(build):
    backbone = build()
    assert backbone.image.class_token().shape == (backbone.image.width,)
    _zero_class_position(backbone)
    size = backbone.preprocessing.size
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first = backbone.image.embed(pixels)[:, 0]
    torch.testing.assert_close(first, backbone.image.class_token().expand_as(first), rtol=0, atol=1e-6)


def test_class_token_of_a_vit_without_one_and_of_a_resnet_is_unsupported():
    with pytest.raises(NotImplementedError, match="tiny timm vit image tower: the ViT has no class token"):
        tiny_timm_backbone(class_token=False, global_pool="avg").image.class_token()
    assert not hasattr(tiny_openclip_backbone("resnet").image, "class_token")
