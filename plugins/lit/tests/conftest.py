"""Shared fixtures: one torch thread, shapes-clip, tiny backbones, and a finished small RAVE run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of the plugin runs on one intra-op thread (mmadapt.testing's fixture)."""


@pytest.fixture(scope="session")
def shapes_clip():
    """The shipped shapes-clip backbone, built through the registry like a recipe's section."""
    from mmadapt import validate_section

    return validate_section("backbone", {"name": "shapes-clip"}, where="backbone").build()


@pytest.fixture(scope="session")
def tiny_clip():
    """A tiny random-weight open_clip CLIP (ViT tower of 32 x 32 images)."""
    from mmadapt.testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone()


@pytest.fixture(scope="session")
def image_task():
    """An image-to-image task without classes (paired data)."""
    from mmadapt import Task

    return Task([], kind="image-to-image", name="pairs")


@pytest.fixture(scope="session")
def rave_run(tmp_path_factory):
    """A finished small RAVE run directory (zero-dce++, shapes-clip, 32 x 32 ShapesWorld pairs)."""
    from lit_testing import shapes_recipe
    from mmadapt.testing import run_recipe

    out = tmp_path_factory.mktemp("rave-run")
    run_recipe(shapes_recipe({"name": "rave"}, {"name": "rave"}), out)
    return out / "run"
