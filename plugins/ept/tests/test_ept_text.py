"""``ept`` on the text tower: the reductions of ept.md to DePT, to vanilla prompt tuning (CoOp) and to the
hand-written prompt, fusion and gate invariants, gradients, truncation, class switching and caching."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from ept_testing import CLASSNAMES, randomise
from mmadapt import PromptLearner, Task, UserError, prompt_name


def features(adapter) -> torch.Tensor:
    with torch.no_grad():
        return adapter.text_features()


def dept_reference(backbone, classnames, short_prompt, offset) -> torch.Tensor:
    """DePT written out: embeddings of "X .. X {name}." at full length, P_s in the X rows, + Δ, pooled at EOT."""
    m = short_prompt.shape[0]
    ids = backbone.text.tokenize([f"{' '.join(['X'] * m)} {prompt_name(name)}." for name in classnames])
    with torch.no_grad():
        embeddings = backbone.text.token_embedding(ids).clone()
        embeddings[:, 1 : 1 + m] = short_prompt
        embeddings = embeddings + offset
        return F.normalize(backbone.text.encode_embeddings(embeddings, backbone.text.eot_index(ids)), dim=-1)


def test_both_switches_off_is_dept(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, fusion=False, projection=False, rank=3).eval()
    randomise(adapter)
    with torch.no_grad():
        offset = 8.0 / 3**0.5 * adapter.parts.offset.A @ adapter.parts.offset.B
    assert offset.abs().max() > 1e-3  # the offset really acts
    expected = dept_reference(backbone, CLASSNAMES, adapter.prompt.ctx.detach(), offset)
    torch.testing.assert_close(features(adapter), expected, atol=1e-6, rtol=0)


def test_rank_zero_without_switches_is_coop(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, fusion=False, projection=False, rank=0, n_ctx=6).eval()
    coop = PromptLearner(backbone, CLASSNAMES, adapter.prompt.ctx.detach().clone())
    with torch.no_grad():
        expected = coop.encode(backbone, coop())
    torch.testing.assert_close(features(adapter), expected, atol=1e-6, rtol=0)


def test_word_prompt_at_init_is_the_handwritten_prompt(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, init="a photo of a").eval()  # fusion and projection on
    with torch.no_grad():
        expected = backbone.encode_text(
            backbone.text.tokenize([f"a photo of a {prompt_name(c)}." for c in CLASSNAMES]), normalize=True
        )
    torch.testing.assert_close(features(adapter), expected, atol=1e-6, rtol=0)


def test_every_switch_setting_is_vanilla_prompt_tuning_at_init(backbone, make_adapter):
    short_prompt = torch.randn(4, backbone.text.width, generator=torch.Generator().manual_seed(0)) * 0.02
    outputs = []
    for fusion, projection in itertools.product([False, True], repeat=2):
        adapter = make_adapter("ept", backbone, fusion=fusion, projection=projection).eval()
        adapter.prompt.ctx.data.copy_(short_prompt)
        outputs.append(features(adapter))
    for other in outputs[1:]:
        torch.testing.assert_close(other, outputs[0], atol=1e-6, rtol=0)


def test_fusion_rows_sum_to_one_and_vanish_without_offset():
    from mmadapt_ept.parts import fuse, fusion_weights

    torch.manual_seed(0)
    prompt, offset = torch.randn(4, 16), torch.randn(20, 16)
    weights = fusion_weights(prompt, offset)
    assert weights.shape == (4, 20)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(4))
    assert not torch.allclose(fuse(prompt, offset), prompt)
    torch.testing.assert_close(fuse(prompt, torch.zeros(20, 16)), prompt, atol=0, rtol=0)


def test_fusion_is_a_no_op_at_rank_zero(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, rank=0, projection=False)
    with torch.no_grad():
        torch.testing.assert_close(adapter.reconstructed_prompt(), adapter.prompt.ctx, atol=0, rtol=0)


def test_gate_sums_to_one_and_is_uniform_at_init(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, subspaces=5)
    projection = adapter.parts.projection
    with torch.no_grad():
        gates = projection.gates(adapter.prompt.ctx)
        torch.testing.assert_close(gates, torch.full((5,), 0.2))
        randomise(adapter)
        gates = projection.gates(adapter.prompt.ctx)
    assert not torch.allclose(gates, torch.full((5,), 0.2))
    torch.testing.assert_close(gates.sum(), torch.tensor(1.0))


def test_offset_rows_after_the_last_end_token_get_no_gradient(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, fusion=False, rank=4).train()
    randomise(adapter)
    adapter.text_features().square().sum().backward()
    longest = int(adapter.prompt.eot.max())
    grad = adapter.parts.offset.A.grad
    assert grad[longest + 1 :].abs().max() == 0
    assert grad[: longest + 1].abs().sum(dim=1).gt(0).all()
    assert all(p.grad is None for p in adapter.backbone.parameters())
    assert adapter.prompt.ctx.grad.abs().sum() > 0 and adapter.parts.projection.V.grad.abs().sum() > 0


def test_with_fusion_every_offset_row_gets_gradient(backbone, make_adapter):
    adapter = make_adapter("ept", backbone, rank=4).train()
    randomise(adapter)
    adapter.text_features().square().sum().backward()
    assert adapter.parts.offset.A.grad.abs().sum(dim=1).gt(0).all()


def test_truncation_is_exact_with_fusion_off(backbone, make_adapter):
    full = make_adapter("ept", backbone, fusion=False).eval()
    randomise(full)
    cut = make_adapter("ept", backbone, fusion=False, truncate=True).eval()
    cut.load_trainable_state_dict(full.trainable_state_dict())
    assert cut.positions == int(cut.prompt.eot.max()) + 1 < backbone.text.context_length
    torch.testing.assert_close(features(cut), features(full), atol=1e-6, rtol=0)


def test_truncation_with_fusion_fixes_s_and_a_mismatch_is_refused(backbone, make_adapter):
    cut = make_adapter("ept", backbone, truncate=True)
    longest = int(cut.prompt.eot.max()) + 1
    assert cut.parts.offset.A.shape[0] == longest and int(cut.trainable_state_dict()["offset_length"]) == longest
    full = make_adapter("ept", backbone)
    with pytest.raises(UserError, match=rf"s={longest} .*adapter.truncate"):
        full.load_trainable_state_dict(cut.trainable_state_dict())


def test_longer_novel_prompts_get_no_offset_after_s(backbone, make_adapter):
    """Truncated with fusion on, s stays as trained: a longer class prompt gets Δ on its first s positions
    and no offset after them (written out here at full length with a zero-padded Δ)."""
    cut = make_adapter("ept", backbone, truncate=True).eval()
    randomise(cut)
    s = cut.parts.offset.length
    novel = ["a class name long enough to need more text positions", "cat"]
    cut.set_task(Task(novel))
    assert cut.positions > s
    full_length = PromptLearner(backbone, novel, cut.prompt.ctx.detach(), truncate=False)
    with torch.no_grad():
        offset = cut.parts.offset()
        prompt = cut.parts.prompt(cut.prompt.ctx, offset)  # fusion over the trained s rows only
        padded = F.pad(offset, (0, 0, 0, backbone.text.context_length - s))
        expected = full_length.encode(backbone, full_length.assemble(prompt) + padded)
    torch.testing.assert_close(features(cut), expected, atol=1e-6, rtol=0)


def test_class_switching_rebuilds_the_class_rows(backbone, make_adapter):
    adapter = make_adapter("ept", backbone).eval()
    randomise(adapter)
    novel = ["cat", "tiger shark"]
    adapter.set_task(Task(novel))
    fresh = make_adapter("ept", backbone, classnames=novel).eval()
    fresh.load_trainable_state_dict(adapter.trainable_state_dict())
    torch.testing.assert_close(features(adapter), features(fresh), atol=0, rtol=0)


def test_eval_text_features_are_computed_once(backbone, make_adapter, monkeypatch):
    adapter = make_adapter("ept", backbone).eval()
    calls = []
    original = adapter.text_features
    monkeypatch.setattr(adapter, "text_features", lambda: calls.append(1) or original())
    batch = {"image_features": torch.randn(3, backbone.embed_dim)}
    with torch.no_grad():
        first, second = adapter(batch)["logits"], adapter(batch)["logits"]
    assert len(calls) == 1 and torch.equal(first, second)
    adapter.train()
    adapter(batch)
    adapter(batch)
    assert len(calls) == 3


def test_parameter_groups_split_prompt_side_and_low_rank(backbone, make_adapter):
    adapter = make_adapter("ept", backbone)
    groups = adapter.parameter_groups()
    names = {id(p): n for n, p in adapter.named_parameters()}
    assert sorted(names[id(p)] for p in groups["low_rank"]) == ["parts.offset.A", "parts.offset.B"]
    assert sorted(names[id(p)] for p in groups["prompt"]) == [
        "parts.projection.U", "parts.projection.V", "parts.projection.gate.bias", "parts.projection.gate.weight",
        "prompt.ctx",
    ]
    trainable = {n for n, p in adapter.named_parameters() if p.requires_grad}
    assert trainable == {names[id(p)] for group in groups.values() for p in group}
