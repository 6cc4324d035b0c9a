"""A LoRA run on shapes-clip exports, and its merged weights load in plain open_clip with the run's features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmadapt import load_adapter
from mmadapt.testing import adapt_command, run_recipe
from mmadapt_shapes.model import create_model

RECIPE = Path(__file__).resolve().parents[1] / "src" / "mmadapt_shapes" / "recipes" / "shapes-lora.yaml"


@pytest.mark.slow
def test_merged_shapes_clip_lora_loads_in_plain_open_clip(one_torch_thread, tmp_path):
    import open_clip

    run_recipe(RECIPE, tmp_path, ["train.epochs=1", "train.lr=0.01", "data.train_size=100", "data.test_size=40"])
    out = tmp_path / "export"
    assert adapt_command(["export", str(tmp_path / "run"), "--out", str(out), "--merge"]) == 0
    loaded = load_adapter(out)
    plain = open_clip.create_model(f"local-dir:{out / 'merged'}").eval()
    pixels = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        features = plain.encode_image(pixels, normalize=True)
        expected = loaded.adapter.backbone.encode_image(pixels, normalize=True)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=0)
    shipped = create_model().state_dict()
    changed = [name for name, tensor in plain.state_dict().items() if not torch.equal(tensor, shipped[name])]
    assert changed and all(name.startswith("visual.") for name in changed), changed
