"""PromptSRC (base-to-novel, with Gaussian prompt aggregation) on 2 processes (torchrun, gloo on the CPU): the
1-process metrics, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_deep" / "recipes"
#: Two epochs with the Gaussian centred on the second, so the aggregated prompts differ from the last epoch's.
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "data.shots=2", "train.epochs=2",
         "train.batch_size=4", "eval.batch_size=6", "adapter.gpa_mean=2")


def test_promptsrc_gives_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(
        [ProcessCase("promptsrc-base2novel", RECIPES / "deep-shapes-promptsrc.yaml", SHORT)], tmp_path)
