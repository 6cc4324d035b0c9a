"""KAPT's continuous prompt through the shared-prefix text pass.

Without the knowledge bias the context is the same for every class, so the start token and the
context run once: a training step against the same step with every prompt encoded whole
(``mmadapt.testing.assert_shared_prefix_exact``). With the bias each class has its own context and
the prompts are encoded whole.
"""

from __future__ import annotations

import torch
from mmadapt.testing import assert_shared_prefix_exact


def test_kapt_step_without_the_bias_is_unchanged_by_the_shared_prefix(make_kapt, tiny_batch):
    adapter = make_kapt(knowledge_bias=False)
    assert_shared_prefix_exact(adapter, tiny_batch)


def test_with_the_bias_each_class_has_its_own_context_and_nothing_is_shared(make_kapt, tiny_backbone, tiny_batch):
    adapter = make_kapt()
    calls = []
    tower = tiny_backbone.text
    original = tower.run_shared_prefix
    tower.run_shared_prefix = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    try:
        with torch.no_grad():
            adapter.train()(tiny_batch)
    finally:
        del tower.run_shared_prefix
    assert not calls
