"""The deep-prompt adapters on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never a hang.

Metrics are compared to the digit (DDP's other order of the gradient sums moves no accuracy here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_deep" / "recipes"
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "data.shots=2", "train.epochs=2",
         "train.batch_size=4", "eval.batch_size=6")

CASES = [
    ProcessCase("ivlp-base2novel", RECIPES / "deep-shapes-ivlp.yaml", SHORT),
    ProcessCase("maple-base2novel", RECIPES / "deep-shapes-maple.yaml", SHORT),
    # The Gaussian centred on the second of two epochs, so the aggregated prompts differ from the last epoch's.
    ProcessCase("promptsrc-base2novel", RECIPES / "deep-shapes-promptsrc.yaml", (*SHORT, "adapter.gpa_mean=2")),
    # MMRL with its own objective and decoupled inference.
    ProcessCase("mmrl-base2novel", RECIPES / "deep-shapes-mmrl.yaml", SHORT),
]


def test_deep_prompts_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)
