"""Every registered adapter (builtin and installed plugins) meets ``assert_adapter_contract`` on the
tiny backbones: an open_clip CLIP with a ViT and with a ResNet image tower, and an image-only timm ViT.

An adapter that classifies through the text tower cannot run on the image-only backbone, and one
that prompts a ViT image tower cannot run on the ResNet: there it must stop with the clear error that
says so, and the case is skipped with that message. An adapter of image-to-image tasks (enhancement)
cannot classify the tiny task at all: it must say that it needs an image-to-image task. The tiny task
describes its classes, for knowledge-aware adapters.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from mmadapt import UserError
from mmadapt.plugins import PluginManager
from mmadapt.testing import assert_adapter_contract, make_batch, tiny_bundle
from mmadapt.testing_models import tiny_openclip_backbone, tiny_timm_backbone

BACKBONES = {
    "clip-vit": lambda: tiny_openclip_backbone("vit"),
    "clip-resnet": lambda: tiny_openclip_backbone("resnet"),
    "timm-vit": tiny_timm_backbone,
}
IMAGE_ONLY = {"timm-vit"}
NOT_VIT = {"clip-resnet"}
KNOWLEDGE = {"red": "the colour of fire and blood", "green": "the colour of grass and leaves",
             "blue": "the colour of the sky and the sea", "yellow": "the colour of lemons and the sun"}

#: Adapter keys that a backbone needs instead of the defaults. LoRA's default targets are the blocks
#: of an open_clip ViT: on a ResNet image tower it adapts the text tower, on timm its ``attn.qkv``.
CONFIG = {("lora", "clip-resnet"): {"tower": "text"}, ("lora", "timm-vit"): {"targets": ["attn.qkv"]}}
#: Prompt-depth defaults sized for ViT-B/16 (5 of 12 blocks) exceed the tiny towers' two blocks.
CONFIG.update({(adapter, backbone): {"prompt_layers": 2} for adapter in ("multi-lane", "seq-prompt")
               for backbone in ("clip-vit", "timm-vit")})
CONFIG[("mmrl", "clip-vit")] = {"layers": [2, 2]}
CONFIG.update({(adapter, "clip-vit"): {"depth": 2} for adapter in ("ivlp", "maple", "promptsrc")})

ADAPTERS = PluginManager().load().registry.names("adapter")


def test_the_matrix_covers_builtin_and_plugin_adapters():
    assert {"zeroshot", "linear-probe", "lora"} <= set(ADAPTERS)
    try:
        import mmadapt_prompts  # noqa: F401
    except ImportError:
        return
    assert {"coop", "cocoop", "latent-prompt", "mvlpt"} <= set(ADAPTERS)


def file_keys(adapter_name, backbone, folder):
    """Keys naming the files an adapter reads, written for ``backbone``: atlas composes a task vector of it."""
    if adapter_name != "atlas":
        return {}
    from mmadapt_atlas.vectors import TaskVector, base_identity, save_vector

    generator = torch.Generator().manual_seed(0)
    tensors = {name: 0.01 * torch.randn(p.shape, generator=generator)
               for name, p in backbone.image.parameter_blocks().items()}
    save_vector(folder / "vector.safetensors", TaskVector(tensors, {**base_identity(backbone), "task": "other"}))
    return {"vectors": [str(folder / "vector.safetensors")]}


@pytest.mark.parametrize("backbone_name", sorted(BACKBONES))
@pytest.mark.parametrize("adapter_name", ADAPTERS)
def test_adapter_contract(adapter_name, backbone_name, plugin_manager, tmp_path):
    component = plugin_manager.registry.get("adapter", adapter_name)
    backbone = BACKBONES[backbone_name]()
    bundle = tiny_bundle()
    task = replace(bundle.task, knowledge=KNOWLEDGE)
    batch = make_batch(bundle.split("train"), backbone)
    torch.manual_seed(0)
    options = {**CONFIG.get((adapter_name, backbone_name), {}), **file_keys(adapter_name, backbone, tmp_path)}
    try:
        adapter = component.build(component.config(**options), backbone, task)
        assert_adapter_contract(adapter, batch)
    except UserError as error:
        if backbone_name in IMAGE_ONLY and "no text tower" in str(error):
            pytest.skip(f"{adapter_name} needs a text tower, {backbone_name} has none: {error}")
        if backbone_name in NOT_VIT and "ViT image tower" in str(error):
            pytest.skip(f"{adapter_name} needs a ViT image tower, {backbone_name} has none: {error}")
        if "needs an image-to-image task" in str(error):
            pytest.skip(f"{adapter_name} enhances images and does not classify: {error}")
        raise
