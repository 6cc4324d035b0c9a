"""The shared-prefix text pass: positions every prompt shares run once, the same features and gradients.

``TokenTextTower.run_shared_prefix`` against ``run`` on the whole sequences (with tokens replaced or
inserted at deeper layers, as deep text prompts do), and ``PromptLearner.encode_context`` against
``encode(assemble(...))``: forward features and gradients w.r.t. the context in fp32 at 1e-5, on
tiny CLIPs with a ViT and a ResNet image tower and on open_clip's ViT-S-32 and RN50 (random weights).
"""

from __future__ import annotations

import logging

import pytest
import torch
from mmadapt import OpenClipBackbone, PromptLearner, new_context
from mmadapt.testing_models import tiny_openclip_backbone

#: Multi-token names, "_" for spaces, punctuation.
CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern", "aquarium_fish"]
#: fp32, relative to the largest entry where that exceeds 1 (gradients of a sum over classes and
#: dimensions reach tens; in float64 both passes agree to 1e-14).
ATOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_openclip(arch: str) -> OpenClipBackbone:
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(arch, pretrained=None)
    return OpenClipBackbone(model, name=f"openclip {arch}")


BACKBONES = {
    "tiny-vit": lambda: tiny_openclip_backbone("vit"),
    "tiny-resnet": lambda: tiny_openclip_backbone("resnet"),
    "ViT-S-32": lambda: random_openclip("ViT-S-32"),
    "RN50": lambda: random_openclip("RN50"),
}


@pytest.fixture(scope="module", params=list(BACKBONES))
def backbone(request):
    return BACKBONES[request.param]()


@pytest.fixture(scope="module")
def tiny():
    return tiny_openclip_backbone()


def assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = max(1.0, float(expected.detach().abs().max()))
    torch.testing.assert_close(got, expected, atol=ATOL * scale, rtol=0)


def features_and_grad(learner: PromptLearner, backbone, context=None, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of ``context`` (the learned one by default) and the gradient of a fixed projection of them."""
    learner.ctx.grad = None
    features = learner.encode_context(backbone, learner.ctx if context is None else context, **options)
    weights = torch.randn(features.shape, generator=torch.Generator().manual_seed(1))
    (features * weights).sum().backward()
    return features.detach(), learner.ctx.grad.clone()


def assert_shared_equals_whole(learner: PromptLearner, backbone, **options) -> None:
    learner.share_prefix = True
    shared = features_and_grad(learner, backbone, **options)
    learner.share_prefix = False
    whole = features_and_grad(learner, backbone, **options)
    learner.share_prefix = True
    assert_close(shared[0], whole[0])
    assert_close(shared[1], whole[1])


class Calls:
    """Counts ``run_shared_prefix`` calls of one tower class."""

    def __init__(self, monkeypatch, tower) -> None:
        self.count = 0
        original = type(tower).run_shared_prefix

        def counted(tower_self, *args, **kwargs):
            self.count += 1
            return original(tower_self, *args, **kwargs)

        monkeypatch.setattr(type(tower), "run_shared_prefix", counted)


# -- the prompt learner ------------------------------------------------------------------------------


@pytest.mark.parametrize("position", ["end", "middle"])
def test_a_shared_context_gives_the_whole_prompts_features_and_gradients(backbone, position, monkeypatch, caplog):
    learner = PromptLearner(backbone, CLASSNAMES, new_context(backbone, None, None), position)
    assert learner.shared_length == 1 + (16 if position == "end" else 8)
    calls = Calls(monkeypatch, backbone.text)
    with caplog.at_level(logging.DEBUG, logger="mmadapt.prompting"):
        assert_shared_equals_whole(learner, backbone)
    assert calls.count == 1  # the shared pass ran once, the whole pass once without it
    assert [r.getMessage() for r in caplog.records] == [
        "text prompts encoded whole, no shared prefix: share_prefix is off"
    ]


def test_an_offset_on_every_prompt_and_fewer_positions_stay_exact(tiny):
    """EPT's form: an offset added to the first positions of every prompt, a chosen number of positions."""
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 4, None), truncate=False)
    offset = torch.randn(9, tiny.text.width, generator=torch.Generator().manual_seed(2)) * 0.1
    for positions in (int(learner.eot.max()) + 1, tiny.text.context_length):
        assert_shared_equals_whole(learner, tiny, offset=offset, positions=positions)
    short = offset[:3]  # shorter than the shared positions (SOS + 4 context tokens)
    assert_shared_equals_whole(learner, tiny, offset=short)


def test_where_sharing_is_not_exact_the_prompts_are_encoded_whole_and_the_log_says_why(tiny, monkeypatch, caplog):
    calls = Calls(monkeypatch, tiny.text)
    context = new_context(tiny, 4, None)
    cases = {
        "every class has its own context (csc)": PromptLearner(
            tiny, CLASSNAMES, new_context(tiny, 4, None, n_classes=len(CLASSNAMES))
        ),
        "the class name comes right after the start token (class_token_position: front)": PromptLearner(
            tiny, CLASSNAMES, context.clone(), "front"
        ),
    }
    for reason, learner in cases.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="mmadapt.prompting"), torch.no_grad():
            got = learner.encode_context(tiny, learner.ctx)
        assert caplog.records[0].getMessage().endswith(reason)
        torch.testing.assert_close(got, learner.encode(tiny, learner()), atol=0, rtol=0)

    # A context that differs per class (KAPT's bias per class) cannot share its positions.
    learner = PromptLearner(tiny, CLASSNAMES, context.clone())
    per_class = learner.ctx + torch.randn(len(CLASSNAMES), 1, tiny.text.width) * 0.01
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="mmadapt.prompting"), torch.no_grad():
        got = learner.encode_context(tiny, per_class)
        again = learner.encode_context(tiny, per_class)
    assert [r.getMessage() for r in caplog.records] == [
        "text prompts encoded whole, no shared prefix: the context differs per class"
    ]  # logged once per learner and reason, not every step
    torch.testing.assert_close(got, learner.encode(tiny, learner.assemble(per_class)), atol=0, rtol=0)
    torch.testing.assert_close(again, got, atol=0, rtol=0)

    # A tower that sees later positions (bidirectional) is refused.
    monkeypatch.setattr(type(tiny.text), "shares_prefixes", property(lambda self: False))
    learner = PromptLearner(tiny, CLASSNAMES, context.clone())
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="mmadapt.prompting"), torch.no_grad():
        learner.encode_context(tiny, learner.ctx)
    assert "is not causal or its attention takes no key/value prefix" in caplog.records[0].getMessage()
    assert calls.count == 0


# -- the tower: deep text prompts --------------------------------------------------------------------


def embedded(tiny, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    text = tiny.text
    ids = text.tokenize(texts)
    eot = text.eot_index(ids)
    return text.embed(text.token_embedding(ids[:, : int(eot.max()) + 1])), eot


def test_tokens_replaced_and_inserted_at_deeper_layers_keep_the_prefix_shared(tiny):
    """Deep text prompts: context replaced at each deeper layer (IVLP, MaPLe), tokens inserted after SOS (MMRL)."""
    text = tiny.text
    x, eot = embedded(tiny, ["a photo of a dog.", "a photo of a golden retriever.", "a photo of a x"])
    shared = 5  # start token and "a photo of a"
    generator = torch.Generator().manual_seed(3)
    deep = torch.randn(1, 4, text.width, generator=generator, requires_grad=True)
    group = [torch.randn(1, 2, text.width, generator=generator, requires_grad=True) for _ in range(2)]
    tail = torch.randn(1, 3, text.width, generator=generator)  # straddles the prefix and the suffixes
    changes = {"replace": {1: (1, deep)}, "insert": {0: group[0], 1: group[1]}, "insert_at": 1}

    for options in (changes, {"replace": {0: (3, tail), 1: (1, deep)}}):
        whole = text.run(x, **options)
        part = text.run_shared_prefix(x[:1, :shared], x[:, shared:], **options)
        assert_close(part.tokens, whole.tokens[:, shared:])
        assert_close(part.prefix.expand(3, -1, -1), whole.tokens[:, :shared])
        if whole.inserted is not None:
            assert_close(part.inserted.expand(3, -1, -1), whole.inserted)
        leaves = [deep, *group] if "insert" in options else [deep]
        weights = torch.randn(3, text.width, generator=torch.Generator().manual_seed(4))
        grads = []
        for tokens, pooled in ((whole.tokens, eot), (part.tokens, eot - shared)):
            features = text.final_norm(tokens)[torch.arange(3), pooled]
            grads.append(torch.autograd.grad((features * weights).sum(), leaves, retain_graph=True))
        for got, expected in zip(grads[1], grads[0]):
            assert_close(got, expected)


def test_encode_shared_prefix_is_encode_embeddings_of_the_whole_prompts(tiny):
    text = tiny.text
    ids = text.tokenize(["a photo of a dog.", "a photo of a golden retriever."])
    eot = text.eot_index(ids)
    embeddings = text.token_embedding(ids[:, : int(eot.max()) + 1])
    with torch.no_grad():
        whole = text.encode_embeddings(embeddings, eot)
        shared = text.encode_shared_prefix(embeddings[:1, :5], embeddings[:, 5:], eot)
    assert_close(shared, whole)


def test_what_cannot_be_shared_is_refused_clearly(tiny, monkeypatch):
    text = tiny.text
    x, eot = embedded(tiny, ["a photo of a dog.", "a photo of a cat."])
    prefix, suffix = x[:1, :5], x[:, 5:]
    with pytest.raises(ValueError, match="same for every sequence"):
        text.run_shared_prefix(prefix, suffix, replace={1: (1, torch.zeros(2, 2, text.width))})
    with pytest.raises(ValueError, match="after a prefix shared by suffix groups"):
        groups = [suffix[:1], suffix[1:, :-1]]
        text.run_shared_prefix(prefix, groups, replace={0: (5, torch.zeros(2, 1, text.width))})
    with pytest.raises(ValueError, match="inserted tokens must sit within the shared prefix"):
        text.run_shared_prefix(prefix, suffix, insert={0: torch.zeros(1, 2, text.width)}, insert_at=6)
    with pytest.raises(ValueError, match=r"a shared prefix is \(1, P, width\)"):
        text.run_shared_prefix(x[:, :5], suffix)
    with pytest.raises(ValueError, match="every end token must lie after the 5 shared positions"):
        text.encode_shared_prefix(prefix, suffix, torch.tensor([3, 7]))
    monkeypatch.setattr(type(text), "shares_prefixes", property(lambda self: False))
    with pytest.raises(ValueError, match="needs a causal text tower"):
        text.run_shared_prefix(prefix, suffix)


def test_deep_prompts_through_encode_shared_prefix_with_prompts_of_several_lengths(tiny):
    """Prompts cut after their own end tokens run in groups of one length; the deep tokens reach every group."""
    text = tiny.text
    ids = text.tokenize(["a photo of a dog.", "a photo of a golden retriever.", "a photo of a x", "a photo of a cat."])
    eot = text.eot_index(ids)
    embeddings = text.token_embedding(ids[:, : int(eot.max()) + 1])
    generator = torch.Generator().manual_seed(5)
    deep = torch.randn(1, 4, text.width, generator=generator, requires_grad=True)
    group = torch.randn(1, 2, text.width, generator=generator, requires_grad=True)
    changes = {"replace": {1: (1, deep)}, "insert": {1: group}, "insert_at": 1}
    whole = text.head(text.run(text.embed(embeddings), **changes).tokens, eot)
    shared = text.encode_shared_prefix(embeddings[:1, :5], embeddings[:, 5:], eot, **changes)
    assert_close(shared, whole)
    weights = torch.randn(whole.shape, generator=generator)
    for got, expected in zip(torch.autograd.grad((shared * weights).sum(), [deep, group]),
                             torch.autograd.grad((whole * weights).sum(), [deep, group])):
        assert_close(got, expected)
