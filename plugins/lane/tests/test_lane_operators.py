"""The lane's operators against naive loop references (float64, within 1e-6): selector aggregation,
prefix-prompt attention, drop-and-replace, concat masking; and token merging."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from lane_testing import images, incremental_task, make_adapter
from mmadapt_lane.lanes import lane_block, merged_tokens, selector_summaries

ATOL = 1e-6


def naive_summaries(selectors, frozen):
    """Each selector's softmax over the frozen tokens, token by token."""
    batch, count, width = selectors.shape
    out = torch.zeros_like(selectors)
    for b in range(batch):
        for s in range(count):
            scores = [float(selectors[b, s] @ frozen[b, n]) / math.sqrt(width) for n in range(frozen.shape[1])]
            top = max(scores)
            weights = [math.exp(v - top) for v in scores]
            total = sum(weights)
            for n, weight in enumerate(weights):
                out[b, s] += weight / total * frozen[b, n]
    return out


def test_selector_aggregation_equals_the_loop():
    generator = torch.Generator().manual_seed(0)
    selectors = torch.randn(2, 3, 8, generator=generator, dtype=torch.float64)
    frozen = torch.randn(2, 5, 8, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(
        selector_summaries(selectors, frozen), naive_summaries(selectors, frozen), atol=ATOL, rtol=0
    )


def block_weights(block):
    """(ln1, (Wq, bq, Wk, bk, Wv, bv), (Wo, bo), heads) of a timm or open_clip block's attention."""
    inner = block.block
    if hasattr(inner, "ln_1"):
        attn = inner.attn
        w, b = attn.in_proj_weight, attn.in_proj_bias
        width = w.shape[1]
        parts = (w[:width], b[:width], w[width : 2 * width], b[width : 2 * width], w[2 * width :], b[2 * width :])
        return inner.ln_1, parts, (attn.out_proj.weight, attn.out_proj.bias), attn.num_heads
    attn = inner.attn
    w, b = attn.qkv.weight, attn.qkv.bias
    width = w.shape[1]
    parts = (w[:width], b[:width], w[width : 2 * width], b[width : 2 * width], w[2 * width :], b[2 * width :])
    return inner.norm1, parts, (attn.proj.weight, attn.proj.bias), attn.num_heads


def naive_attention(block, x, prefix):
    """Multi-head attention of normalised tokens ``x`` (B, T, w) over themselves and the prefix, query by query."""
    _, (wq, bq, wk, bk, wv, bv), (wo, bo), heads = block_weights(block)
    batch, length, width = x.shape
    head = width // heads
    out = torch.zeros_like(x)
    for b in range(batch):
        keys, values = x[b] @ wk.T + bk, x[b] @ wv.T + bv
        if prefix is not None:
            keys = torch.cat([keys, prefix[0][min(b, len(prefix[0]) - 1)]])
            values = torch.cat([values, prefix[1][min(b, len(prefix[1]) - 1)]])
        merged = torch.zeros(length, width, dtype=x.dtype)
        for h in range(heads):
            cols = slice(h * head, (h + 1) * head)
            for t in range(length):
                query = (x[b, t] @ wq.T + bq)[cols]
                scores = torch.stack([query @ keys[k, cols] for k in range(len(keys))]) / math.sqrt(head)
                weights = torch.softmax(scores, dim=0)
                merged[t, cols] = sum(weights[k] * values[k, cols] for k in range(len(keys)))
        out[b] = merged @ wo.T + bo
    return out


@pytest.fixture
def double_backbone(backbone):
    return copy.deepcopy(backbone).double()


def test_prefix_attention_equals_the_loop(double_backbone):
    block = double_backbone.image.blocks[0]
    width = double_backbone.image.width
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, width, generator=generator, dtype=torch.float64)
    prefix = tuple(torch.randn(1, 3, width, generator=generator, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(block.attention(x, prefix), naive_attention(block, x, prefix), atol=ATOL, rtol=0)


def naive_lane_block(block, lane, context, prefix):
    """The lane block written out: summaries by the loop, attention by the loop, drop-and-replace, MLP."""
    norm1 = block_weights(block)[0]
    normed = norm1(lane)
    summaries = naive_summaries(normed[:, 1:], context)
    attended = naive_attention(block, torch.cat([normed[:, :1], summaries], dim=1), prefix)
    lane = lane + torch.cat([attended[:, :1], normed[:, 1:]], dim=1)
    return lane + block.feed_forward(lane)


def test_a_lane_block_equals_the_loop(double_backbone):
    block = double_backbone.image.blocks[0]
    width = double_backbone.image.width
    generator = torch.Generator().manual_seed(2)
    lane = torch.randn(2, 4, width, generator=generator, dtype=torch.float64)
    frozen = torch.randn(2, 7, width, generator=generator, dtype=torch.float64)
    prefix = tuple(torch.randn(1, 3, width, generator=generator, dtype=torch.float64) for _ in range(2))
    context = block.norm1(frozen)
    torch.testing.assert_close(
        lane_block(block, lane, context, prefix), naive_lane_block(block, lane, context, prefix), atol=ATOL, rtol=0
    )


class WithoutFeedForward:
    """A block whose MLP branch adds nothing, so a block's output minus its input is the attention branch."""

    def __init__(self, block):
        self.block = block

    def norm1(self, x):
        return self.block.norm1(x)

    def attention(self, x, prefix=None):
        return self.block.attention(x, prefix)

    def feed_forward(self, x):
        return torch.zeros_like(x)


def test_drop_and_replace_gives_the_selector_slots_their_ln1_values(double_backbone):
    block = WithoutFeedForward(double_backbone.image.blocks[1])
    width = double_backbone.image.width
    generator = torch.Generator().manual_seed(3)
    lane = torch.randn(2, 5, width, generator=generator, dtype=torch.float64)
    context = block.norm1(torch.randn(2, 9, width, generator=generator, dtype=torch.float64))
    branch = lane_block(block, lane, context, None) - lane
    torch.testing.assert_close(branch[:, 1:], block.norm1(lane)[:, 1:], atol=ATOL, rtol=0)
    normed = block.norm1(lane)
    attended = block.attention(torch.cat([normed[:, :1], selector_summaries(normed[:, 1:], context)], dim=1))
    torch.testing.assert_close(branch[:, :1], attended[:, :1], atol=ATOL, rtol=0)
    kept = lane_block(block, lane, context, None, drop_and_replace=False) - lane
    torch.testing.assert_close(kept, attended, atol=ATOL, rtol=0)
    assert (kept[:, 1:] - branch[:, 1:]).abs().max() > 1e-3  # the ablation does change the slots


def naive_concat_logits(adapter, pixels):
    """Every lane run on its own through the operators, its head logits kept on its own block."""
    backbone = adapter.backbone
    blocks = backbone.image.blocks
    out = torch.zeros(len(pixels), adapter.task.n_classes, dtype=torch.float64)
    for lane_index, classes in enumerate(adapter.class_blocks[: adapter.seen]):
        frozen = backbone.image.embed(pixels)
        cls = adapter._lane_input([lane_index], len(pixels), frozen.dtype)
        for layer, block in enumerate(blocks):
            prompted = layer < adapter.prompted_layers
            prefix = tuple(t.unsqueeze(0) for t in adapter.prompts[layer][:, lane_index]) if prompted else None
            cls = naive_lane_block(block, cls, block.norm1(frozen), prefix)
            frozen = block(frozen)
        feature = torch.nn.functional.normalize(backbone.image.final_norm(cls[:, :1])[:, 0], dim=-1)
        logits = feature @ adapter.head.weight.T + adapter.head.bias
        for c in classes:
            out[:, c] = logits[:, c]
    return out


@pytest.mark.parametrize("batch_lanes", [False, True])
def test_concat_masking_equals_each_lane_on_its_own_block(double_backbone, batch_lanes):
    task = incremental_task([2, 2, 1])
    adapter = make_adapter(double_backbone, task, prompt_layers=1, batch_lanes=batch_lanes).double().eval()
    with torch.no_grad():
        adapter.head.bias.normal_()  # biases of every class differ from 0, so a leak would show
        adapter.start_task(1)  # lane 1 starts as lane 0; perturb it so the lanes differ
        adapter.selectors[1].add_(0.5)
        adapter.end_task(1)
        pixels = images(double_backbone, 3).double()
        logits = adapter({"image": pixels})["logits"]
        expected = naive_concat_logits(adapter, pixels)
    torch.testing.assert_close(logits, expected, atol=ATOL, rtol=0)
    assert torch.equal(logits[:, 4:], torch.zeros_like(logits[:, 4:]))  # task 3 not served yet


def naive_merge(frozen, count):
    """The reference's token merging, one image and one pair at a time: the class token is never merged,
    each round merges the (N - 1) // 2 best-matched pairs into plain means."""
    out = []
    for tokens in frozen:
        tokens = [t.clone() for t in tokens]
        while len(tokens) > count and (len(tokens) - 1) // 2 > 0:
            a, b = tokens[::2], tokens[1::2]
            best = []
            for i, token in enumerate(a):
                similarities = [float(token @ other / (token.norm() * other.norm())) for other in b]
                score = -math.inf if i == 0 else max(similarities)
                best.append((score, i, similarities.index(max(similarities))))
            ranked = sorted(best, key=lambda entry: -entry[0])
            merges = (len(tokens) - 1) // 2
            groups = {j: [b[j]] for j in range(len(b))}
            for _, i, j in ranked[:merges]:
                groups[j].append(a[i])
            kept = sorted(i for _, i, _ in ranked[merges:])
            tokens = [a[i] for i in kept] + [sum(groups[j]) / len(groups[j]) for j in range(len(b))]
        out.append(torch.stack(tokens))
    return torch.stack(out)


def test_token_merging_equals_the_reference_loop_and_keeps_the_class_token_first():
    generator = torch.Generator().manual_seed(4)
    frozen = torch.randn(2, 65, 6, generator=generator, dtype=torch.float64)
    merged = merged_tokens(frozen, 10)
    assert merged.shape == (2, 9, 6)  # 65 -> 33 -> 17 -> 9: the last round goes below the count
    torch.testing.assert_close(merged, naive_merge(frozen, 10), atol=ATOL, rtol=0)
    assert torch.equal(merged[:, 0], frozen[:, 0])
    assert torch.equal(merged_tokens(frozen, 65), frozen)


def test_token_merging_merges_duplicates_and_never_the_class_token():
    generator = torch.Generator().manual_seed(5)
    unique = torch.randn(1, 4, 6, generator=generator, dtype=torch.float64)
    cls = unique[:, :1] * 1.01  # the most similar token to the first unique one, protected all the same
    tokens = torch.cat([cls, unique.repeat_interleave(2, dim=1)], dim=1)  # c, u1, u1, u2, u2, ...
    torch.testing.assert_close(merged_tokens(tokens, 5), torch.cat([cls, unique], dim=1), atol=ATOL, rtol=0)


def test_a_merging_lane_takes_the_merged_frozen_class_tokens_attention_output(double_backbone):
    block = WithoutFeedForward(double_backbone.image.blocks[0])
    width = double_backbone.image.width
    generator = torch.Generator().manual_seed(6)
    context = block.norm1(torch.randn(2, 17, width, generator=generator, dtype=torch.float64))
    expected = block.attention(merged_tokens(context, 4))[:, :1]
    for _ in range(2):  # whatever the lane holds, its branch is the frozen class token's
        lane = torch.randn(2, 1, width, generator=generator, dtype=torch.float64)
        branch = lane_block(block, lane, context, None, "merge", 4) - lane
        torch.testing.assert_close(branch, expected, atol=ATOL, rtol=0)


def test_without_drop_and_replace_later_blocks_attend_over_the_carried_tokens(double_backbone):
    block = WithoutFeedForward(double_backbone.image.blocks[1])
    width = double_backbone.image.width
    generator = torch.Generator().manual_seed(7)
    lane = torch.randn(2, 5, width, generator=generator, dtype=torch.float64)
    carried = lane_block(block, lane, None, None, drop_and_replace=False, summarise=False) - lane
    torch.testing.assert_close(carried, block.attention(block.norm1(lane)), atol=ATOL, rtol=0)
