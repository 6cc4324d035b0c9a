"""``ept-visual``: the reductions to VPT-shallow and to an independently written visual DePT, the token
sequence entering the first block (prefix tokens without offset), heads and class switching."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ept_testing import randomise
from mmadapt import Task, UserError


def pixels(backbone, n: int = 3) -> torch.Tensor:
    size = backbone.preprocessing.size
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def features(adapter, images) -> torch.Tensor:
    with torch.no_grad():
        return adapter({"image": images})["features"]


@pytest.fixture(params=["openclip", "timm"])
def vit(request, backbone, timm_backbone):
    """The open_clip tiny CLIP (1 prefix token) and the timm tiny ViT with registers (3 prefix tokens)."""
    return backbone if request.param == "openclip" else timm_backbone


@pytest.mark.parametrize("fusion", [False, True])
def test_rank_zero_without_projection_is_vpt_shallow(vit, make_adapter, fusion):
    adapter = make_adapter("ept-visual", vit, rank=0, projection=False, fusion=fusion, n_ctx=5).eval()
    images = pixels(vit)
    start, m = vit.image.num_prefix_tokens, adapter.ctx.shape[0]
    with torch.no_grad():
        # VPT-shallow: the prompts after the prefix tokens, dropped again before pooling.
        tokens = vit.image.embed(images)
        tokens = torch.cat([tokens[:, :start], adapter.ctx.expand(len(images), -1, -1), tokens[:, start:]], 1)
        for block in vit.image.blocks:
            tokens = block(tokens)
        tokens = torch.cat([tokens[:, :start], tokens[:, start + m :]], dim=1)
        expected = F.normalize(vit.image.head(tokens), dim=-1)
    torch.testing.assert_close(features(adapter, images), expected, atol=1e-6, rtol=0)


def test_both_switches_off_is_visual_dept(vit, make_adapter):
    adapter = make_adapter("ept-visual", vit, fusion=False, projection=False, rank=3, n_ctx=2).eval()
    randomise(adapter)
    images, start = pixels(vit), vit.image.num_prefix_tokens
    with torch.no_grad():
        offset = 8.0 / 3**0.5 * adapter.parts.offset.A @ adapter.parts.offset.B
        assert offset.abs().max() > 1e-3
        tokens = vit.image.embed(images)
        tokens = torch.cat([tokens[:, :start], adapter.ctx.expand(len(images), -1, -1), tokens[:, start:] + offset], 1)
        for block in vit.image.blocks:
            tokens = block(tokens)
        tokens = torch.cat([tokens[:, :start], tokens[:, start + 2 :]], dim=1)
        expected = F.normalize(vit.image.head(tokens), dim=-1)
    torch.testing.assert_close(features(adapter, images), expected, atol=1e-6, rtol=0)


class FirstBlockInput:
    """Wraps the first vision block and keeps the tokens that enter it."""

    def __init__(self, blocks) -> None:
        self.blocks, self.seen = blocks, []

    def __call__(self):
        first = self.blocks[0]

        def record(x, prefix=None):
            self.seen.append(x.detach())
            return first(x, prefix)

        return [record, *self.blocks[1:]]


def test_sequence_length_and_prefix_tokens_without_offset(vit, make_adapter, monkeypatch):
    m = 3
    recorder = FirstBlockInput(vit.image.blocks)
    monkeypatch.setattr(type(vit.image), "blocks", property(lambda tower: recorder()))
    adapter = make_adapter("ept-visual", vit, fusion=False, projection=False, n_ctx=m).eval()
    images = pixels(vit, 2)
    features(adapter, images)
    randomise(adapter)
    features(adapter, images)
    start, n = vit.image.num_prefix_tokens, adapter.n_patches
    before, after = recorder.seen[-2:]
    assert before.shape == (2, start + m + n, vit.image.width)
    change = after - before
    assert change[:, : start + m].abs().max() == 0  # prefix tokens and prompts: no offset
    with torch.no_grad():
        torch.testing.assert_close(change[:, start + m :], adapter.parts.offset().expand(2, -1, -1), atol=1e-6, rtol=0)


def test_timm_registers_count_as_prefix_tokens(timm_backbone, make_adapter):
    adapter = make_adapter("ept-visual", timm_backbone)
    assert timm_backbone.image.num_prefix_tokens == 3
    tokens = timm_backbone.image.embed(pixels(timm_backbone, 1))
    assert adapter.parts.offset.A.shape[0] == adapter.n_patches == tokens.shape[1] - 3


def test_zeroshot_head_and_class_switching(backbone, make_adapter):
    from mmadapt import zeroshot_classifier

    adapter = make_adapter("ept-visual", backbone).eval()
    randomise(adapter)
    images, novel = pixels(backbone), ["cat", "tiger shark"]
    adapter.set_task(Task(novel, templates=["a photo of a {}."]))
    with torch.no_grad():
        out = adapter({"image": images})
        head = zeroshot_classifier(backbone, novel, ["a photo of a {}."])
    torch.testing.assert_close(out["logits"], backbone.logit_scale * out["features"] @ head.t())


def test_linear_head_without_text_tower_and_no_class_switching(timm_backbone, make_adapter):
    adapter = make_adapter("ept-visual", timm_backbone)
    assert adapter.head_kind == "linear"
    assert adapter.parameter_counts()["head"] == (timm_backbone.embed_dim + 1) * 5
    with pytest.raises(UserError, match="cannot evaluate on classes"):
        adapter.set_task(Task(["cat"]))
    with pytest.raises(UserError, match="adapter.head=zeroshot needs a text tower"):
        make_adapter("ept-visual", timm_backbone, head="zeroshot")
