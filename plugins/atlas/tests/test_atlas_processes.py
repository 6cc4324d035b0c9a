"""aTLAS few-shot and test-time adaptation on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never
a hang.

The recipes compose task vectors of shapes-clip; the test makes two small ones (seeded noise on each image-tower
block) with the plugin's own vector format, so it needs no fine-tuning runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt import get_plugin_manager
from mmadapt.testing import ProcessCase, assert_same_across_processes
from mmadapt_atlas.vectors import TaskVector, base_identity, save_vector

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")]

RECIPES = Path(__file__).resolve().parents[1] / "src" / "mmadapt_atlas" / "recipes"
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "train.epochs=2", "train.batch_size=4",
         "eval.batch_size=6")


def noise_vectors(folder: Path, seeds: tuple[int, ...] = (1, 2), scale: float = 0.02) -> list[str]:
    """Task vector files of shapes-clip: seeded normal noise times ``scale`` on every image-tower block."""
    component = get_plugin_manager().registry.get("backbone", "shapes-clip")
    backbone = component.build(component.config())
    blocks = backbone.image.parameter_blocks()
    paths = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        tensors = {name: scale * torch.randn(block.shape, generator=generator) for name, block in blocks.items()}
        path = folder / f"noise{seed}.safetensors"
        save_vector(path, TaskVector(tensors, {**base_identity(backbone), "task": f"noise {seed}"}))
        paths.append(str(path))
    return paths


def test_atlas_gives_the_one_process_metrics_on_two(tmp_path):
    vectors = "adapter.vectors=[" + ",".join(noise_vectors(tmp_path)) + "]"
    assert_same_across_processes([
        ProcessCase("atlas-fewshot", RECIPES / "atlas-shapes-fewshot.yaml", (*SHORT, "data.shots=2", vectors)),
        ProcessCase("atlas-tta", RECIPES / "atlas-shapes-tta.yaml", (*SHORT, vectors)),
    ], tmp_path / "runs")
