"""The core's baselines on 2 processes (torchrun, gloo on the CPU) give the 1-process metrics, and never hang.

Each launch runs every case in turn (one start-up for all of them) under the stall watchdog. The
metrics are compared to the digit: DDP sums each batch's gradients in another order than one process
(float differences of about 1e-7 in the weights), which moves no accuracy of these runs; with
``train.exact_shards`` the weights are the same bits too (the lit plugin's matrix shows it on image metrics).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
#: ShapesWorld cut to seconds: a few small images, a few steps.
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "data.shots=2", "train.epochs=2",
         "train.batch_size=4", "eval.batch_size=6")

CASES = [
    ProcessCase("zeroshot-eval-only", RECIPES / "shapes-zeroshot.yaml", ("data.test_size=16", "data.image_size=32",
                                                                          "eval.batch_size=6")),
    ProcessCase("linear-probe-standard", RECIPES / "shapes-linear-probe.yaml", SHORT),
    ProcessCase("lora-standard", RECIPES / "shapes-lora.yaml", SHORT),
    ProcessCase("lora-base2novel", RECIPES / "shapes-lora.yaml", (*SHORT, "protocol.name=base2novel")),
    # A global batch of 3 does not split over 2 processes: a clear error at the stage's start.
    ProcessCase("lora-odd-batch", RECIPES / "shapes-lora.yaml", (*SHORT, "train.batch_size=3"),
                error="its batch size is 3, which does not split evenly over 2 processes"),
    # Exact shards: the shards' gradients gathered and summed in shard order, passes in whole batches.
    ProcessCase("lora-exact-shards", RECIPES / "shapes-lora.yaml", (*SHORT, "train.exact_shards=2")),
    ProcessCase("lora-odd-shards", RECIPES / "shapes-lora.yaml", (*SHORT, "train.exact_shards=1"),
                error="train.exact_shards=1 does not split over 2 processes"),
]


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_core_baselines_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)


def test_every_plugin_with_adapters_or_protocols_runs_them_in_the_matrix():
    plugins = [folder for folder in sorted((ROOT / "plugins").iterdir())
               if any(hook in path.read_text() for path in folder.glob("src/*/plugin.py")
                      for hook in ("def register_adapters", "def register_protocols"))]
    assert len(plugins) >= 5
    missing = [folder.name for folder in plugins
               if not any("assert_same_across_processes" in test.read_text()
                          for test in folder.glob("tests/test_*_processes.py"))]
    assert missing == [], f"plugins without tests/test_<plugin>_processes.py (see docs/testing-plugins.md): {missing}"
