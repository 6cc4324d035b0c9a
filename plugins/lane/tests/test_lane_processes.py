"""MULTI-LANE's class-incremental and joint protocols on 2 processes (torchrun, gloo on the CPU): the
1-process metrics, never a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_lane" / "recipes"
SHORT = ("data.train_size=32", "data.test_size=16", "data.image_size=32", "train.epochs=1", "train.batch_size=8",
         "eval.batch_size=6", "adapter.num_selectors=2", "adapter.prompt_length=2")

CASES = [
    ProcessCase("lane-class-incremental", RECIPES / "lane-shapes.yaml", SHORT),
    ProcessCase("lane-joint", RECIPES / "lane-shapes-joint.yaml", SHORT),
]


def test_lane_protocols_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)
