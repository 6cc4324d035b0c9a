"""Shared fixtures of mmadapt-deep's tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""
