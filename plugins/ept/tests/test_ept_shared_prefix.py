"""EPT's text prompt through the shared-prefix text pass: [SOS][P] + Δ is the same in every prompt.

A training step with those positions computed once against the same step with every prompt encoded
whole (``mmadapt.testing.assert_shared_prefix_exact``), cut or not, with and without fusion.
"""

from __future__ import annotations

import pytest
import torch
from mmadapt.testing import assert_shared_prefix_exact


@pytest.mark.parametrize("truncate", [True, False])
@pytest.mark.parametrize("fusion", [True, False])
def test_ept_step_is_unchanged_by_the_shared_prefix(tiny_backbone, tiny_task, tiny_batch, make_adapter, truncate,
                                                    fusion):
    adapter = make_adapter("ept", tiny_backbone, tiny_task.classnames, truncate=truncate, fusion=fusion)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # away from the zero offset at init, so every part has a gradient
        for p in adapter.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    assert_shared_prefix_exact(adapter, tiny_batch)
