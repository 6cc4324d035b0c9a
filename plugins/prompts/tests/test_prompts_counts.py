"""Trainable parameter counts at ViT-B/16's widths (text 512, joint 512), as coop-family.md tabulates."""

from __future__ import annotations

NAMES_50 = [f"class {i}" for i in range(50)]


def trainable(adapter) -> int:
    return adapter.parameter_counts()["trainable"]


def test_coop_counts(wide_backbone, make_adapter):
    assert trainable(make_adapter("coop", wide_backbone)) == 8_192
    assert trainable(make_adapter("coop", wide_backbone, init="a photo of a")) == 2_048
    assert trainable(make_adapter("coop", wide_backbone, csc=True, classnames=NAMES_50)) == 8_192 * 50
    assert trainable(make_adapter("mvlpt", wide_backbone)) == 8_192


def test_cocoop_counts(wide_backbone, make_adapter):
    adapter = make_adapter("cocoop", wide_backbone)  # 4 context tokens from "a photo of a"
    assert trainable(adapter) == 35_360
    groups = adapter.parameter_groups()
    assert sum(p.numel() for p in groups["prompt"]) == 2_048
    assert sum(p.numel() for p in groups["meta_net"]) == 16_416 + 16_896


def test_latent_prompt_counts(wide_backbone, make_adapter):
    assert trainable(make_adapter("latent-prompt", wide_backbone, classnames=NAMES_50)) == 25_600


def test_only_the_adapters_own_tensors_are_trainable(wide_backbone, make_adapter):
    adapter = make_adapter("cocoop", wide_backbone)
    trainable_names = {name for name, p in adapter.named_parameters() if p.requires_grad}
    assert trainable_names == {"prompt.ctx", "meta_net.linear1.weight", "meta_net.linear1.bias",
                               "meta_net.linear2.weight", "meta_net.linear2.bias"}
