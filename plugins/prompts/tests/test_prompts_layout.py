"""coop's prompts: the identity test of coop-family.md through the adapter, class switching, config checks.

The prompt machinery itself (layouts, word init, cutting, class-specific contexts) is tested with
the core, in tests/test_prompting.py.
"""

from __future__ import annotations

import pytest
import torch
from mmadapt import Task

HANDWRITTEN = {"end": "a photo of a {}.", "middle": "a photo {} of a.", "front": "{} a photo of a."}


def encode(backbone, template: str, classnames: list[str]) -> torch.Tensor:
    texts = [template.format(name.replace("_", " ")) for name in classnames]
    with torch.no_grad():
        return backbone.encode_text(backbone.text.tokenize(texts), normalize=True)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_context_from_words_reproduces_the_handwritten_prompt(backbone, make_adapter, position):
    adapter = make_adapter("coop", backbone, init="a photo of a", class_token_position=position).eval()
    with torch.no_grad():
        features = adapter.text_features()
    expected = encode(backbone, HANDWRITTEN[position], adapter.task.classnames)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=0)


def test_identity_holds_at_vit_b16_text_width(wide_backbone, make_adapter):
    adapter = make_adapter("coop", wide_backbone, init="a photo of a").eval()
    with torch.no_grad():
        features = adapter.text_features()
    expected = encode(wide_backbone, HANDWRITTEN["end"], adapter.task.classnames)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=0)


def test_frozen_rows_are_not_saved_and_follow_the_classes(backbone, make_adapter):
    adapter = make_adapter("coop", backbone, init="a photo of a")
    assert set(adapter.trainable_state_dict()) == {"prompt.ctx"}
    adapter.set_task(Task(["cat", "tiger shark"]))
    adapter.eval()
    with torch.no_grad():
        features = adapter.text_features()
    torch.testing.assert_close(features, encode(backbone, HANDWRITTEN["end"], ["cat", "tiger shark"]), atol=1e-5,
                               rtol=0)


def test_config_checks():
    from mmadapt_prompts.config import CoopConfig, MvlptConfig

    with pytest.raises(ValueError, match="class_token_position"):
        CoopConfig(class_token_position="start")
    with pytest.raises(ValueError, match="csc needs a random context"):
        CoopConfig(csc=True, init="a photo of a")
    with pytest.raises(ValueError, match="init_from gives the whole context"):
        MvlptConfig(init_from="runs/x", init="a photo of a")
    assert MvlptConfig().class_token_position == "middle"
