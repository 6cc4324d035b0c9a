"""CoOp, KgCoOp and MVLPT through the shared-prefix text pass: the same outputs, loss and gradients.

Each adapter's training step (fp32, tiny CLIP) with the positions every prompt shares computed once
against the same step with every prompt encoded whole (``mmadapt.testing.assert_shared_prefix_exact``).
"""

from __future__ import annotations

import pytest
from mmadapt.testing import assert_shared_prefix_exact


@pytest.mark.parametrize("position", ["end", "middle"])
def test_coop_step_is_unchanged_by_the_shared_prefix(tiny_backbone, tiny_task, tiny_batch, make_adapter, position):
    adapter = make_adapter("coop", tiny_backbone, tiny_task.classnames, class_token_position=position)
    assert_shared_prefix_exact(adapter, tiny_batch)


def test_kgcoop_step_is_unchanged_by_the_shared_prefix(tiny_backbone, tiny_task, tiny_batch, make_adapter,
                                                       plugin_manager):
    # A random context: away from the hand-written prompts the pull has a gradient.
    adapter = make_adapter("coop", tiny_backbone, tiny_task.classnames)
    component = plugin_manager.registry.get("objective", "kg-regularizer")
    objective = component.build(component.config(weight=8.0), adapter)
    assert_shared_prefix_exact(adapter, tiny_batch, objective)


def test_mvlpt_step_is_unchanged_by_the_shared_prefix(tiny_backbone, tiny_task, tiny_batch, make_adapter):
    adapter = make_adapter("mvlpt", tiny_backbone, tiny_task.classnames)
    assert adapter.prompt.position == "middle"  # MCoOp's default: SOS and the first half of the context shared
    assert_shared_prefix_exact(adapter, tiny_batch)
