"""Shared fixtures of the KAPT tests: a tiny random-weight CLIP, a described task, a batch and an adapter factory."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Synthetic descriptions (no bundled Wikipedia text); "sweet_pepper" exercises `_` in names.
KNOWLEDGE = {
    "red": "a warm colour like blood, fire engines and ripe tomatoes",
    "green": "the colour of fresh grass, leaves and limes",
    "blue": "the colour of a clear sky and deep oceans",
    "yellow": "a bright colour like bananas, lemons and sunflowers",
}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""


@pytest.fixture
def described_task(tiny_task):
    """The tiny colour task with a description per class and the dataset's keywords ranked."""
    from dataclasses import replace

    from mmadapt import task_keywords

    task = replace(tiny_task, knowledge=dict(KNOWLEDGE), templates=["a photo of a {}."])
    return replace(task, keywords=task_keywords(task))


@pytest.fixture
def make_kapt(tiny_backbone, described_task):
    """``make_kapt(task=None, backbone=None, **options)``: a ``kapt`` adapter from the registered class."""
    from mmadapt_kapt.config import KaptConfig
    from mmadapt_kapt.kapt import Kapt

    def make(task=None, backbone=None, **options):
        return Kapt(KaptConfig(**options), backbone or tiny_backbone, task or described_task)

    return make
