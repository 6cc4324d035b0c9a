"""The public prompt machinery (mmadapt.prompting) and the kg-regularizer objective.

The identity test of coop-family.md: a context from "a photo of a" gives exactly the hand-written
prompts' features, on the tiny test CLIP and on open_clip architectures with random weights, causal
text tower or not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmadapt import (
    CLASS_TOKEN_POSITIONS,
    HandwrittenTextFeatures,
    OpenClipBackbone,
    PromptLearner,
    Task,
    UserError,
    check_prompt_context,
    new_context,
    token_counts,
    word_context,
    zeroshot_classifier,
)
from mmadapt.builtin.kg import kg_distance
from mmadapt.testing import assert_kg_regularizer_contract, run_recipe, tiny_recipe
from mmadapt.testing_models import tiny_openclip_backbone

#: Multi-token names, "_" for spaces, punctuation.
CLASSNAMES = ["dog", "golden retriever", "sweet_pepper", "jack-o'-lantern", "aquarium_fish"]
HANDWRITTEN = {"end": "a photo of a {}.", "middle": "a photo {} of a.", "front": "{} a photo of a."}
ATOL = 1e-5
PROMPTING_DOC = Path(__file__).resolve().parents[1] / "docs" / "prompting.md"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return tiny_openclip_backbone()


def random_openclip(arch: str) -> OpenClipBackbone:
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = open_clip.create_model(arch, pretrained=None)
    return OpenClipBackbone(model, name=f"openclip {arch}")


@pytest.fixture(scope="module")
def vit_s32():
    return random_openclip("ViT-S-32")


@pytest.fixture(scope="module")
def mobileclip():
    return random_openclip("MobileCLIP-S1")


def encode(backbone, template: str, classnames: list[str]) -> torch.Tensor:
    texts = [template.format(name.replace("_", " ")) for name in classnames]
    with torch.no_grad():
        return backbone.encode_text(backbone.text.tokenize(texts), normalize=True)


def learned_features(learner: PromptLearner, backbone) -> torch.Tensor:
    with torch.no_grad():
        return learner.encode(backbone, learner())


# -- the identity test -------------------------------------------------------------------------------


@pytest.mark.parametrize("position", CLASS_TOKEN_POSITIONS)
@pytest.mark.parametrize("name", ["tiny", "vit_s32", "mobileclip"])
def test_context_from_words_reproduces_the_handwritten_prompt(request, name, position):
    backbone = request.getfixturevalue(name)
    learner = PromptLearner(backbone, CLASSNAMES, new_context(backbone, None, "a photo of a"), position)
    expected = encode(backbone, HANDWRITTEN[position], CLASSNAMES)
    torch.testing.assert_close(learned_features(learner, backbone), expected, atol=ATOL, rtol=0)


def test_sequences_are_cut_only_on_causal_text_towers(tiny, vit_s32, mobileclip, monkeypatch):
    for backbone in (tiny, vit_s32):
        assert backbone.text.causal
        learner = PromptLearner(backbone, CLASSNAMES, new_context(backbone, None, "a photo of a"))
        assert learner().shape[1] == learner.length == int(learner.eot.max()) + 1 < backbone.text.context_length
        full = PromptLearner(backbone, CLASSNAMES, learner.ctx.detach().clone(), truncate=False)
        assert full().shape[1] == full.length == backbone.text.context_length
        torch.testing.assert_close(learned_features(full, backbone), learned_features(learner, backbone),
                                   atol=ATOL, rtol=0)
    # MobileCLIP-S1's text tower has no causal mask: the padding changes the end token's features.
    assert not mobileclip.text.causal
    learner = PromptLearner(mobileclip, CLASSNAMES, new_context(mobileclip, None, "a photo of a"))
    assert learner().shape[1] == learner.length == mobileclip.text.context_length
    monkeypatch.setattr(type(mobileclip.text), "causal", property(lambda self: True))
    cut = PromptLearner(mobileclip, CLASSNAMES, learner.ctx.detach().clone())
    assert cut.length < mobileclip.text.context_length
    error = (learned_features(cut, mobileclip) - learned_features(learner, mobileclip)).abs().max()
    assert error > 1e-2  # why the learner asks the backbone before cutting


# -- context initialisation --------------------------------------------------------------------------


def test_word_init_counts_bpe_tokens_not_words(tiny):
    # "jack-o'-lantern" is one word but several BPE tokens; CoOp's split(" ") would say 1.
    n_tokens = int(token_counts(tiny, ["jack-o'-lantern"])[0])
    assert n_tokens > 1
    context = word_context(tiny, "jack-o'-lantern")
    assert context.shape == (n_tokens, tiny.text.width)
    ids = tiny.text.tokenize(["jack-o'-lantern"])
    torch.testing.assert_close(context, tiny.text.token_embedding(ids)[0, 1 : 1 + n_tokens], atol=0, rtol=0)
    assert torch.equal(new_context(tiny, n_tokens, "jack-o'-lantern"), context)


def test_init_and_a_different_n_ctx_conflict(tiny):
    with pytest.raises(UserError, match="n_ctx=8 but adapter.init='a photo of a' is 4 tokens"):
        new_context(tiny, 8, "a photo of a")


def test_random_context_is_coops_initialisation(tiny):
    torch.manual_seed(0)
    shared = new_context(tiny, None, None)
    assert shared.shape == (16, tiny.text.width)
    assert 0.015 < shared.std().item() < 0.025 and abs(shared.mean().item()) < 0.005
    assert new_context(tiny, 4, None, n_classes=5).shape == (5, 4, tiny.text.width)


def test_recipe_checks():
    check_prompt_context(4, "a photo of a", "middle")
    with pytest.raises(ValueError, match="adapter.class_token_position must be one of end, middle, front"):
        check_prompt_context(None, None, "start")
    with pytest.raises(ValueError, match="prompt.n_ctx must be at least 1"):
        check_prompt_context(0, None, "end", section="prompt")
    with pytest.raises(ValueError, match="adapter.init is empty"):
        check_prompt_context(None, "  ", "end")


# -- layouts, class switching, other contexts ---------------------------------------------------------


def test_middle_and_front_are_permutations_of_the_end_layout(tiny):
    torch.manual_seed(0)
    context = new_context(tiny, 6, None)
    end = PromptLearner(tiny, CLASSNAMES, context.clone())
    for position in ("middle", "front"):
        other = PromptLearner(tiny, CLASSNAMES, context.clone(), position)
        a, b = end(), other()
        assert a.shape == b.shape and not torch.equal(a, b)
        # Same rows per class, other order; SOS first.
        assert torch.equal(a.sort(dim=1).values, b.sort(dim=1).values)
        assert torch.equal(a[:, 0], b[:, 0])
    middle = PromptLearner(tiny, CLASSNAMES, context.clone(), "middle")()
    # Class 0 ("dog", one token): [SOS][ctx 0-2][dog][ctx 3-5][.]...
    torch.testing.assert_close(middle[0, 1:4], context[:3], atol=0, rtol=0)
    torch.testing.assert_close(middle[0, 5:8], context[3:], atol=0, rtol=0)
    front = PromptLearner(tiny, CLASSNAMES, context.clone(), "front")()
    torch.testing.assert_close(front[0, 2:8], context, atol=0, rtol=0)


def test_set_classnames_serves_other_classes_and_only_ctx_is_saved(tiny):
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, None, "a photo of a"), "middle")
    assert set(learner.state_dict()) == {"ctx"}
    learner.set_classnames(tiny, ["cat", "tiger shark"])
    assert learner.eot.shape == (2,)
    torch.testing.assert_close(learned_features(learner, tiny), encode(tiny, HANDWRITTEN["middle"],
                                                                       ["cat", "tiger shark"]), atol=ATOL, rtol=0)


def test_class_specific_context_cannot_serve_other_classes(tiny):
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 4, None, n_classes=len(CLASSNAMES)))
    assert learner.csc and learner().shape[0] == len(CLASSNAMES)
    with pytest.raises(UserError, match="class-specific context"):
        learner.set_classnames(tiny, ["cat", "tiger shark"])


def test_a_class_prompt_longer_than_the_context_is_refused(tiny):
    with pytest.raises(UserError, match="does not fit the model's 77 text positions"):
        PromptLearner(tiny, ["dog", " ".join(["word"] * 60)], new_context(tiny, 16, None))
    with pytest.raises(ValueError, match="class token position must be one of end, middle, front"):
        PromptLearner(tiny, ["dog"], new_context(tiny, 4, None), "start")


@pytest.mark.parametrize("position", ["end", "front"])
def test_endings_replace_the_full_stop(tiny, position):
    endings = [", which has four legs.", ", a kind of fruit.", "!", ", which glows.", "."]
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, None, "a photo of a"), position, endings=endings)
    words = "a photo of a"
    texts = [f"{words} {name.replace('_', ' ')}{ending}" if position == "end" else
             f"{name.replace('_', ' ')} {words}{ending}" for name, ending in zip(CLASSNAMES, endings)]
    with torch.no_grad():
        expected = tiny.encode_text(tiny.text.tokenize(texts), normalize=True)
    torch.testing.assert_close(learned_features(learner, tiny), expected, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="2 prompt endings for 5 classes"):
        learner.set_classnames(tiny, CLASSNAMES, endings[:2])


def test_assemble_takes_biased_and_computed_contexts(tiny):
    torch.manual_seed(0)
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, 4, None), "middle")
    n_classes, width = len(CLASSNAMES), tiny.text.width
    assert torch.equal(learner.assemble(learner.ctx), learner())
    # An image bias (CoCoOp) is a batched context.
    image_bias = torch.randn(3, width)
    batched = learner.assemble(learner.ctx + image_bias[:, None, None, :])
    assert batched.shape == (3, n_classes, learner.length, width)
    assert torch.equal(batched, learner(image_bias))
    # A class bias changes only its class's prompt.
    class_bias = torch.zeros(n_classes, width)
    class_bias[2] = 1.0
    prompts = learner.assemble(learner.ctx + class_bias[:, None, :])
    changed = (prompts != learner()).flatten(1).any(dim=1)
    assert changed.tolist() == [False, False, True, False, False]


def test_an_offset_on_the_assembled_prompts_trains_and_the_backbone_does_not(tiny):
    learner = PromptLearner(tiny, CLASSNAMES, new_context(tiny, None, "a photo of a"))
    offset = torch.zeros(learner.length, tiny.text.width, requires_grad=True)
    features = learner.encode(tiny, learner() + offset)
    torch.testing.assert_close(features, learned_features(learner, tiny), atol=0, rtol=0)
    features.sum().backward()
    assert offset.grad is not None and offset.grad.abs().sum() > 0 and learner.ctx.grad is not None
    assert all(p.grad is None for p in tiny.parameters())


# -- hand-written targets and the kg-regularizer objective --------------------------------------------


def test_handwritten_features_are_computed_once_per_class_list(tiny, monkeypatch):
    targets = HandwrittenTextFeatures()
    calls = []
    original = tiny.encode_text
    monkeypatch.setattr(tiny, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    templates = ["a photo of a {}.", "a drawing of a {}."]
    first = targets(tiny, CLASSNAMES, templates)
    assert targets(tiny, CLASSNAMES, templates) is first and len(calls) == 1
    torch.testing.assert_close(first, zeroshot_classifier(tiny, CLASSNAMES, templates), atol=0, rtol=0)
    assert not first.requires_grad and first.dtype == torch.float32
    other = targets(tiny, ["cat", "dog"], templates)
    assert other.shape[0] == 2 and len(calls) == 3
    targets(tiny, ["cat", "dog"], templates[:1])
    assert len(calls) == 4
    assert targets.state_dict() == {}


def test_kg_distance_is_zero_for_equal_and_two_for_opposite_features():
    features = F.normalize(torch.randn(5, 8), dim=-1)
    assert kg_distance(features, features).item() == pytest.approx(0.0, abs=1e-6)
    assert kg_distance(-features, features).item() == pytest.approx(2.0, abs=1e-6)
    # Image-conditioned prompts (B, n_classes, D) are compared with their class's target.
    assert kg_distance(features.expand(3, -1, -1), features).item() == pytest.approx(0.0, abs=1e-6)


def doc_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PROMPTING_DOC.read_text(encoding="utf-8"), re.S)


@pytest.fixture
def short_coop(tiny):
    """The adapter of docs/prompting.md, defined by running the page's first Python block."""
    namespace: dict = {}
    exec(compile(doc_python_blocks()[0], f"{PROMPTING_DOC}#1", "exec"), namespace)
    return namespace["ShortCoop"]


def test_the_documented_adapter_meets_the_kg_regularizer_contract(tiny, short_coop, plugin_manager):
    adapter = short_coop(None, tiny, Task(list(CLASSNAMES), templates=["a photo of a {}."])).train()
    batch = {"image": torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)),
             "label": torch.tensor([0, 1, 2])}
    kg = plugin_manager.registry.get("objective", "kg-regularizer")
    assert kg.plugin == "mmadapt.builtin.plugin"  # a builtin: no method plugin needed
    assert_kg_regularizer_contract(adapter, batch)


def test_kg_regularizer_refuses_adapters_without_handwritten_targets(tiny_plugin, tmp_path):
    recipe = tiny_recipe(adapter={"name": "linear-probe"}, objective={"name": "kg-regularizer"},
                         protocol={"name": "standard"})
    with pytest.raises(UserError, match="kg-regularizer needs an adapter with learned text features"):
        run_recipe(recipe, tmp_path)


def test_kg_regularizer_rejects_a_negative_weight(plugin_manager):
    kg = plugin_manager.registry.get("objective", "kg-regularizer")
    with pytest.raises(ValueError, match="objective.weight must be non-negative"):
        kg.config(weight=-1.0)


def test_documented_snippets_run(tiny, short_coop):
    task = Task(list(CLASSNAMES))
    namespace = {"backbone": tiny, "task": task, "PromptLearner": PromptLearner, "new_context": new_context}
    exec(compile(doc_python_blocks()[1], f"{PROMPTING_DOC}#2", "exec"), namespace)
    reference = learned_features(namespace["learner"], tiny)
    # Zero bias, zero offset: the plain prompts (the offset's prompts share their prefix: fp32 rounding).
    torch.testing.assert_close(namespace["conditioned"], reference, atol=0, rtol=0)
    torch.testing.assert_close(namespace["shifted"], reference, atol=ATOL, rtol=0)
    assert namespace["described"]().shape[0] == len(CLASSNAMES)
    adapter = short_coop(None, tiny, task).eval()
    with torch.no_grad():
        text = adapter({"image": torch.zeros(1, 3, 32, 32)})["text_features"]
    torch.testing.assert_close(text, encode(tiny, HANDWRITTEN["end"], CLASSNAMES), atol=ATOL, rtol=0)
