"""RAVE and CLIP-LIT on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never a hang.

Their iteration-based stages draw the same global batches on any process count. With
``train.exact_shards`` every step's gradient is the sum of fixed
shards' gradients in shard order, on one process as on two, and every pass computes whole batches per
process: the metrics are the same to the last bit, under the recipes' own Adam, which grows any
last-digit difference. Without it (``train.exact_shards=0``) DDP averages the processes' gradients, another
order of the same float sums: RAVE's short run then agrees within 2e-5 (relative), which still catches
L_id counted once instead of per process (0.3% of PSNR).
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
EXACT = "train.exact_shards=4"
SUMS = "DDP averages the processes' gradients: another order of the batch's float sums than one process"

CASES = [
    ProcessCase("lit-rave", RECIPES / "lit-shapes-rave.yaml", (*SHORT, EXACT)),
    ProcessCase("lit-clip-lit", RECIPES / "lit-shapes-clip-lit.yaml",
                (*SHORT, EXACT, "protocol.prompt_init_iterations=4", "protocol.prompt_init_batch_size=4",
                 "protocol.rounds=2", "protocol.prompt_iterations=4", "protocol.prompt_batch_size=4")),
    ProcessCase("lit-rave-ddp", RECIPES / "lit-shapes-rave.yaml", (*SHORT, "train.exact_shards=0"),
                tolerance=2e-5, reason=SUMS),
]


def test_lit_protocols_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)
    for name in ("lit-rave", "lit-clip-lit"):  # the grid is computed on every process and written by the main one
        assert (tmp_path / "2" / name / "before-after.png").is_file()
