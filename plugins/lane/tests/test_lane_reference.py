"""Where MULTI-LANE's reference code (tdemin16/multi-lane) decides what the paper leaves open: the
initialisation of selectors, prompts and head, the ablations' semantics, and task-key inference."""

from __future__ import annotations

from unittest import mock

import torch
from lane_testing import images, incremental_task, make_adapter
from mmadapt_lane import multilane


def test_selectors_and_each_layers_prompts_are_orthogonal_as_whole_tensors(clip_backbone):
    adapter = make_adapter(clip_backbone)
    tasks = adapter.num_tasks
    selectors = adapter.selectors.detach().reshape(tasks, -1)  # (T, S x width): orthonormal rows
    torch.testing.assert_close(selectors @ selectors.T, torch.eye(tasks), atol=1e-5, rtol=0)
    for layer in adapter.prompts.detach():  # (keys/values, T, P, width): two orthonormal rows
        rows = layer.reshape(2, -1)
        torch.testing.assert_close(rows @ rows.T, torch.eye(2), atol=1e-5, rtol=0)
    # So every token is small: a selector token's norm is about sqrt(1 / S), not 1.
    token_norms = adapter.selectors.detach().norm(dim=-1)
    assert float(token_norms.max()) < 0.9


def test_the_head_starts_from_a_normal_of_std_0_02_and_zero_bias(clip_backbone):
    for name in ("multi-lane", "seq-prompt"):
        head = make_adapter(clip_backbone, incremental_task([40, 40]), name=name).head
        assert torch.equal(head.bias, torch.zeros_like(head.bias)), name
        weight = head.weight.detach()
        assert 0.018 < float(weight.std()) < 0.022, name  # torch's default here: uniform, std 0.072
        assert abs(float(weight.mean())) < 0.002, name


def test_without_drop_and_replace_only_the_first_block_summarises(clip_backbone):
    adapter = make_adapter(clip_backbone, drop_and_replace=False).eval()
    adapter.serve_tasks(1)  # one lane: one call per block
    with mock.patch.object(multilane, "lane_block", wraps=multilane.lane_block) as spy, torch.no_grad():
        adapter({"image": images(clip_backbone, 2)})
    calls = [call.kwargs["summarise"] for call in spy.call_args_list]
    assert calls == [True] + [False] * (clip_backbone.image.depth - 1)


def test_task_inference_keeps_the_chosen_lanes_logits_for_every_served_class(clip_backbone):
    adapter = make_adapter(clip_backbone, inference="task").eval()
    with torch.no_grad():
        adapter.head.bias.normal_()
        adapter.serve_tasks(2)
        logits = adapter({"image": images(clip_backbone, 3)})["logits"]
    served = adapter.class_blocks[1].stop
    assert bool((logits[:, :served] != 0).all())
    assert torch.equal(logits[:, served:], torch.zeros_like(logits[:, served:]))
