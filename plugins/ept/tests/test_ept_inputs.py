"""Bad recipe input: one clear error each, naming the key; and the plugin stays cheap to import."""

from __future__ import annotations

import pytest
from mmadapt import UserError
from mmadapt_ept.config import EptConfig, EptVisualConfig


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"n_ctx": 0}, "adapter.n_ctx"),
        ({"rank": -1}, "adapter.rank"),
        ({"subspaces": 0}, "adapter.subspaces"),
        ({"subspace_rank": 0}, "adapter.subspace_rank"),
        ({"rank": 1.5}, "adapter.rank"),
    ],
)
@pytest.mark.parametrize("config", [EptConfig, EptVisualConfig])
def test_bad_sizes_name_the_key(config, options, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        config(**options)


def test_bad_head_and_layout_name_the_key():
    with pytest.raises(UserError, match=r"adapter\.head"):
        EptVisualConfig(head="mlp")
    with pytest.raises(ValueError, match="class_token_position"):
        EptConfig(class_token_position="start")


def test_text_variant_on_a_backbone_without_text(timm_backbone, make_adapter):
    with pytest.raises(UserError, match="adapter.name=ept learns text prompts.*no text tower"):
        make_adapter("ept", timm_backbone)


def test_visual_variant_on_a_tower_that_is_not_a_vit(make_adapter):
    from mmadapt.testing_models import tiny_openclip_backbone

    with pytest.raises(UserError, match="adapter.name=ept-visual prompts a ViT image tower"):
        make_adapter("ept-visual", tiny_openclip_backbone("resnet"))


def test_bad_key_in_a_recipe_is_reported_by_validation(plugin_manager, tiny_plugin):
    from mmadapt.testing import check_recipe, tiny_recipe

    with pytest.raises(UserError, match=r"adapter\.rank"):
        check_recipe(tiny_recipe(adapter={"name": "ept", "rank": -2}))


def test_plugin_module_imports_cheaply():
    from mmadapt.testing import assert_import_is_cheap

    assert_import_is_cheap("mmadapt_ept.plugin")
