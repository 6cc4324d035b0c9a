"""``adapt bench deep`` compares equal computations: the reference and our maple step give the same loss and
gradients, and the reference saves more for backward."""

from __future__ import annotations

import torch
from mmadapt import activation_bytes
from mmadapt.testing_models import tiny_openclip_backbone
from mmadapt_deep.bench import build_steps, classnames


def test_the_reference_and_our_step_compute_the_same_loss_and_update():
    backbone = tiny_openclip_backbone("vit")
    names = classnames(7)
    assert len(set(names)) == 7
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 3, 6])
    steps = build_steps(backbone, names, pixels, labels, n_ctx=2, depth=2)
    assert steps.positions["reference"] == f"{backbone.text.context_length} x 7"
    reference, ours = steps.losses["reference"](), steps.losses["ours"]()
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    frozen = list(backbone.parameters())
    assert activation_bytes(steps.losses["reference"], frozen) > activation_bytes(steps.losses["ours"], frozen)
    # One SGD step each from the same prompts: the same loss afterwards.
    steps.steps["reference"]()
    steps.steps["ours"]()
    torch.testing.assert_close(steps.losses["ours"](), steps.losses["reference"](), atol=1e-5, rtol=0)
