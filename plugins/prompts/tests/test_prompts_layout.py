"""Prompt layout: the identity test of coop-family.md, context initialisation and class switching."""

from __future__ import annotations

import pytest
import torch
from mmadapt import Task, UserError

HANDWRITTEN = {"end": "a photo of a {}.", "middle": "a photo {} of a.", "front": "{} a photo of a."}


def encode(backbone, template: str, classnames: list[str]) -> torch.Tensor:
    texts = [template.format(name.replace("_", " ")) for name in classnames]
    with torch.no_grad():
        return backbone.encode_text(backbone.tokenize(texts), normalize=True)


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


def test_word_init_counts_bpe_tokens_not_words(backbone, make_adapter):
    # "jack-o'-lantern" is one word but several BPE tokens; CoOp's split(" ") would say 1.
    adapter = make_adapter("coop", backbone, init="jack-o'-lantern")
    n_tokens = int(backbone.eot_index(backbone.tokenize(["jack-o'-lantern"]))[0]) - 1
    assert n_tokens > 1
    assert adapter.prompt.ctx.shape == (n_tokens, backbone.text_width)


def test_init_and_a_different_n_ctx_conflict(backbone, make_adapter):
    with pytest.raises(UserError, match="n_ctx=8 but adapter.init='a photo of a' is 4 tokens"):
        make_adapter("coop", backbone, init="a photo of a", n_ctx=8)


def test_random_context_is_coop_initialisation(backbone, make_adapter):
    torch.manual_seed(0)
    generic = make_adapter("coop", backbone).prompt.ctx
    assert generic.shape == (16, backbone.text_width)
    assert 0.015 < generic.std().item() < 0.025 and abs(generic.mean().item()) < 0.005
    specific = make_adapter("coop", backbone, n_ctx=4, csc=True)
    assert specific.prompt.ctx.shape == (specific.task.n_classes, 4, backbone.text_width)


def test_middle_and_front_are_permutations_of_the_end_layout(backbone, make_adapter):
    torch.manual_seed(0)
    end = make_adapter("coop", backbone, n_ctx=6)
    for position in ("middle", "front"):
        other = make_adapter("coop", backbone, n_ctx=6, class_token_position=position)
        other.prompt.ctx.data.copy_(end.prompt.ctx)
        a, b = end.prompt(), other.prompt()
        assert a.shape == b.shape
        assert not torch.equal(a, b)
        # Same rows per class, other order; SOS first and the rows from "." on in place.
        assert torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)
        assert torch.equal(a[:, 0], b[:, 0])
    middle = make_adapter("coop", backbone, n_ctx=6, class_token_position="middle")
    middle.prompt.ctx.data.copy_(end.prompt.ctx)
    # Class 0 ("dog", one token): [SOS][ctx 0-2][dog][ctx 3-5][.]...
    torch.testing.assert_close(middle.prompt()[0, 1:4], end.prompt.ctx[:3])
    torch.testing.assert_close(middle.prompt()[0, 5:8], end.prompt.ctx[3:])


def test_sequences_are_cut_after_the_longest_end_token(backbone, make_adapter):
    adapter = make_adapter("coop", backbone, init="a photo of a")
    prompts = adapter.prompt()
    assert prompts.shape[1] == int(adapter.prompt.eot.max()) + 1 < backbone.context_length


def test_frozen_rows_are_not_saved_and_follow_the_classes(backbone, make_adapter):
    adapter = make_adapter("coop", backbone, init="a photo of a")
    assert set(adapter.trainable_state_dict()) == {"prompt.ctx"}
    adapter.set_task(Task(["cat", "tiger shark"]))
    adapter.eval()
    with torch.no_grad():
        features = adapter.text_features()
    torch.testing.assert_close(features, encode(backbone, HANDWRITTEN["end"], ["cat", "tiger shark"]), atol=1e-5,
                               rtol=0)


def test_class_specific_context_cannot_serve_other_classes(backbone, make_adapter):
    adapter = make_adapter("coop", backbone, n_ctx=4, csc=True)
    with pytest.raises(UserError, match="class-specific context"):
        adapter.set_task(Task(["cat", "tiger shark"]))


def test_a_class_name_longer_than_the_context_is_refused(backbone, make_adapter):
    with pytest.raises(UserError, match="text positions; the model has 77"):
        make_adapter("coop", backbone, classnames=["dog", " ".join(["word"] * 60)], n_ctx=16)


def test_config_checks():
    from mmadapt_prompts.config import CoopConfig, MvlptConfig

    with pytest.raises(ValueError, match="class_token_position"):
        CoopConfig(class_token_position="start")
    with pytest.raises(ValueError, match="csc needs a random context"):
        CoopConfig(csc=True, init="a photo of a")
    with pytest.raises(ValueError, match="init_from gives the whole context"):
        MvlptConfig(init_from="runs/x", init="a photo of a")
    assert MvlptConfig().class_token_position == "middle"
