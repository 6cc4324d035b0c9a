"""clip-adapter on 2 processes (torchrun, gloo on the CPU): the 1-process metrics, never a hang.

Needs mmadapt-shapes installed: the case is the published ShapesWorld recipe, cut to seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mmadapt.testing import ProcessCase, assert_same_across_processes

pytest.importorskip("mmadapt_shapes")

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mmadapt_clip_adapter"
RECIPE = PACKAGE / "recipes" / "clip-adapter-shapes.yaml"
SHORT = ("data.train_size=48", "data.test_size=16", "data.image_size=32", "data.shots=2", "train.epochs=2",
         "train.batch_size=4", "eval.batch_size=6")


@pytest.mark.slow
def test_clip_adapter_gives_the_one_process_metrics_on_two(tmp_path):
    assert_same_across_processes([ProcessCase("clip-adapter-standard", RECIPE, SHORT)], tmp_path)
