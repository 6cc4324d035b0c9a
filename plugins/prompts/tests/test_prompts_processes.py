"""The prompts plugin's protocols on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never a hang.

Metrics are compared to the digit (DDP's other order of the gradient sums moves no accuracy here).
CoCoOp's batch of 1 (its paper's setting) cannot be split over 2 processes: a clear error at the stage's
start, naming train.batch_size, instead of the hang at the first gradient exchange.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_prompts" / "recipes"
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "data.shots=2", "train.epochs=2",
         "train.batch_size=4", "eval.batch_size=6")
SHAPES = {"name": "shapes", "train_size": 48, "test_size": 16, "image_size": 32, "shots": 2}

CASES = [
    ProcessCase("coop-quickstart", RECIPES / "quickstart.yaml", SHORT),
    ProcessCase("cocoop-batch-1", RECIPES / "prompts-shapes-cocoop.yaml", (*SHORT, "train.batch_size=1"),
                error="its batch size is 1, which does not split evenly over 2 processes. Set train.batch_size"),
    ProcessCase("cocoop-batch-2", RECIPES / "prompts-shapes-cocoop.yaml", (*SHORT, "train.batch_size=2")),
    ProcessCase("mvlpt-multitask", {
        "name": "mvlpt-multitask", "seed": 1,
        "backbone": {"name": "shapes-clip"},
        "data": {**SHAPES, "task": "shape"},
        "adapter": {"name": "mvlpt", "n_ctx": 4},
        "objective": {"name": "cross-entropy"},
        "protocol": {"name": "multitask", "datasets": [{**SHAPES, "task": "shape-upside-down"}]},
        "train": {"epochs": 2, "batch_size": 4, "optimizer": "adamw", "lr": 0.01, "precision": "fp32"},
        "eval": {"metrics": ["accuracy"], "batch_size": 6},
    }),
]


def test_prompt_protocols_give_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes(CASES, tmp_path)
