"""Deep text prompts through ``PromptLearner.encode_context(deep=...)``: the same features and gradients as the
whole prompts at all ``context_length`` positions through ``TokenTower.run(replace=...)``.

The reference is the computation of the deep-prompt papers' code (IVLP, MaPLe): every class's prompt at
every position, the context positions replaced before each deeper block. Ours runs the shared prefix (SOS
and context) once for all classes and cuts each prompt after its end token; with ``share_prefix`` off it
runs the whole prompts, cut. fp32 at 1e-5, relative to a tensor's largest entry where that exceeds 1.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt import OpenClipBackbone, PromptLearner, new_context
from mmadapt.testing_models import tiny_openclip_backbone

CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern", "aquarium_fish"]
ATOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_vit_b32() -> OpenClipBackbone:
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model("ViT-B-32", pretrained=None)
    return OpenClipBackbone(model, name="openclip ViT-B-32")


@pytest.fixture(scope="module", params=["tiny-vit", "ViT-B-32"])
def backbone(request):
    return tiny_openclip_backbone("vit") if request.param == "tiny-vit" else random_vit_b32()


def assert_close(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = max(1.0, float(expected.detach().abs().max()))
    torch.testing.assert_close(got, expected, atol=ATOL * scale, rtol=0)


def deep_prompts(backbone, n_ctx: int, layers: list[int]) -> dict[int, torch.nn.Parameter]:
    generator = torch.Generator().manual_seed(5)
    return {k: torch.nn.Parameter(torch.randn(n_ctx, backbone.text.width, generator=generator) * 0.02) for k in layers}


def reference_features(learner: PromptLearner, backbone, deep: dict[int, torch.Tensor]) -> torch.Tensor:
    """Every class's prompt at all context_length positions, the context replaced before each deeper block."""
    text = backbone.text
    full = PromptLearner(backbone, CLASSNAMES, learner.ctx.detach(), truncate=False)
    prompts = full.assemble(learner.ctx)
    assert prompts.shape[1] == text.context_length
    replace = {k: (1, tokens.unsqueeze(0)) for k, tokens in deep.items()}
    return F.normalize(text.head(text.run(text.embed(prompts), replace=replace).tokens, full.eot), dim=-1)


def features_and_grads(compute, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    features = compute()
    weights = torch.randn(features.shape, generator=torch.Generator().manual_seed(1))
    return features.detach(), list(torch.autograd.grad((features * weights).sum(), leaves))


@pytest.mark.parametrize("share", [True, False])
def test_deep_text_prompts_equal_the_whole_prompts_with_replaced_context(backbone, share):
    learner = PromptLearner(backbone, CLASSNAMES, new_context(backbone, None, "a photo of a"), share_prefix=share)
    layers = list(range(1, backbone.text.depth))
    deep = deep_prompts(backbone, learner.n_ctx, layers)
    leaves = [learner.ctx, *deep.values()]
    ours = features_and_grads(lambda: learner.encode_context(backbone, learner.ctx, deep=deep), leaves)
    reference = features_and_grads(lambda: reference_features(learner, backbone, deep), leaves)
    assert_close(ours[0], reference[0])
    for got, expected in zip(ours[1], reference[1]):
        assert expected.abs().sum() > 0
        assert_close(got, expected)


def test_deep_prompts_at_some_layers_only_and_the_shared_pass_runs(backbone, monkeypatch):
    tiny = backbone
    layers = [1] if tiny.text.depth == 2 else [2, 5]
    calls = []
    original = type(tiny.text).run_shared_prefix

    def counted(tower, *args, **kwargs):
        calls.append(kwargs.get("replace"))
        return original(tower, *args, **kwargs)

    monkeypatch.setattr(type(tiny.text), "run_shared_prefix", counted)
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 3, None))
    deep = deep_prompts(tiny, 3, layers)
    leaves = [learner.ctx, *deep.values()]
    ours = features_and_grads(lambda: learner.encode_context(tiny, learner.ctx, deep=deep), leaves)
    reference = features_and_grads(lambda: reference_features(learner, tiny, deep), leaves)
    assert_close(ours[0], reference[0])
    for got, expected in zip(ours[1], reference[1]):
        assert_close(got, expected)
    assert len(calls) == 1 and set(calls[0]) == set(layers)
    # No deep prompts: encode_context as before, the shallow prompt's features.
    plain = learner.encode_context(tiny, learner.ctx, deep={})
    torch.testing.assert_close(plain, learner.encode(tiny, learner()), atol=ATOL, rtol=0)


def test_bad_deep_prompts_are_refused_with_the_reason():
    tiny = tiny_openclip_backbone("vit")
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 3, None))
    width, depth = tiny.text.width, tiny.text.depth
    with pytest.raises(ValueError, match="block 0 gets the context"):
        learner.encode_context(tiny, learner.ctx, deep={0: torch.zeros(3, width)})
    with pytest.raises(ValueError, match=f"1 .. {depth - 1}"):
        learner.encode_context(tiny, learner.ctx, deep={depth: torch.zeros(3, width)})
    with pytest.raises(ValueError, match=r"must have shape \(3, "):
        learner.encode_context(tiny, learner.ctx, deep={1: torch.zeros(2, width)})
    middle = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 4, None), "middle")
    with pytest.raises(ValueError, match="class_token_position 'end'"):
        middle.encode_context(tiny, middle.ctx, deep={1: torch.zeros(4, width)})
