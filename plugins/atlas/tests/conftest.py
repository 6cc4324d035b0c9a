"""Shared fixtures: one torch thread, a tiny random-weight CLIP, a fine-tuned copy and vectors between them."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""


@pytest.fixture
def tuned_backbones():
    """Two fine-tuned copies of the tiny CLIP: each image-tower block moved by seeded noise (text tower untouched)."""
    from atlas_testing import perturbed_backbone

    return [perturbed_backbone(seed) for seed in (1, 2)]


@pytest.fixture
def vector_files(tiny_backbone, tuned_backbones, tmp_path):
    """fp32 task vector files of the two tuned copies over the tiny CLIP, for another task than the tiny one."""
    from atlas_testing import write_vector

    return [write_vector(tiny_backbone, tuned, tmp_path / f"tuned{i}.safetensors", task=f"other {i}")
            for i, tuned in enumerate(tuned_backbones)]
