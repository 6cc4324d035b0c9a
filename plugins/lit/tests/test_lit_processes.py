"""RAVE and CLIP-LIT on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never a hang.

Their iteration-based stages draw the same global batches on any process count. Metrics may differ
by 1e-5 (relative): DDP sums each batch's gradients in another order than one process, and image
metrics (PSNR, SSIM) show those last digits where accuracies do not. CLIP-LIT's case trains with SGD:
Adam's first steps divide near-zero gradients by their own size, and CLIP-LIT's prompt softmax (scale
100) then grows those last digits to about 0.2% of PSNR within a few steps, which would hide a real
difference (a loss term counted once instead of per process moves RAVE's PSNR by 0.3%).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_lit" / "recipes"
SHORT = ("data.train_size=16", "data.test_size=8", "data.image_size=32", "eval.batch_size=4",
         "protocol.warmup_iterations=4", "protocol.restart_check_iterations=2", "protocol.enhance_iterations=4",
         "protocol.grid_images=2")
SUMS = "DDP sums each batch's gradients in another order than one process"
SGD = ("train.optimizer=sgd", "train.lr=0.05", "train.param_groups.network.lr=0.05",
       "train.param_groups.prompts.lr=0.05")

CASES = [
    ProcessCase("lit-rave", RECIPES / "lit-shapes-rave.yaml", SHORT, tolerance=1e-5, reason=SUMS),
    ProcessCase("lit-clip-lit", RECIPES / "lit-shapes-clip-lit.yaml",
                (*SHORT, *SGD, "protocol.prompt_init_iterations=4", "protocol.prompt_init_batch_size=4",
                 "protocol.rounds=2", "protocol.prompt_iterations=4", "protocol.prompt_batch_size=4"),
                tolerance=1e-5, reason=SUMS),
]


def test_lit_protocols_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)
    for name in ("lit-rave", "lit-clip-lit"):  # the grid is computed on every process and written by the main one
        assert (tmp_path / "2" / name / "before-after.png").is_file()
