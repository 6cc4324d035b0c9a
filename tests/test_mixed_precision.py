"""Every bundled ShapesWorld recipe family trains a few steps under CPU autocast, in bf16 and fp16, with
finite losses, gradients and outputs; ``train.precision: auto`` picks bf16, fp16 or fp32 by device.

bf16 goes through the recipe's own ``train.precision: bf16`` (Accelerate autocasts on the CPU); Accelerate
runs fp16 on a CPU in fp32, so fp16 runs the recipe at fp32 inside ``torch.autocast("cpu", torch.float16)``,
which covers training and evaluation alike. A non-finite loss stops a run (NonFiniteLossError); a
non-finite gradient would leave non-finite trained weights in the final checkpoint.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from mmadapt import final_checkpoint
from mmadapt.plugins import get_plugin_manager
from mmadapt.shipped_recipes import find_recipe
from mmadapt.testing import run_recipe
from omegaconf import OmegaConf
from safetensors.torch import load_file

#: family: (shipped recipe file, adapter keys replaced). Each lit network also runs under autocast in the lit tests.
FAMILIES = {
    "zeroshot": ("shapes-zeroshot.yaml", {}),
    "linear-probe": ("shapes-linear-probe.yaml", {}),
    "lora": ("shapes-lora.yaml", {}),
    "coop": ("prompts-shapes-coop.yaml", {}),
    "cocoop": ("prompts-shapes-cocoop.yaml", {}),
    "latent-prompt": ("prompts-shapes-latent.yaml", {}),
    "mvlpt": ("prompts-shapes-coop.yaml", {"name": "mvlpt", "init": None, "n_ctx": 4}),
    "kapt": ("kapt-shapes.yaml", {}),
    "ivlp": ("deep-shapes-ivlp.yaml", {}),
    "maple": ("deep-shapes-maple.yaml", {}),
    "ept": ("ept-shapes-text-ept.yaml", {}),
    "ept-visual": ("ept-shapes-visual-ept.yaml", {}),
    "multi-lane": ("lane-shapes.yaml", {}),
    "seq-prompt": ("lane-shapes-seq-prompt.yaml", {}),
    "rave": ("lit-shapes-rave.yaml", {}),
    "rave-unet": ("lit-shapes-rave.yaml", {"network": "unet"}),
    "clip-lit": ("lit-shapes-clip-lit.yaml", {"network": "zero-dce"}),
    "clip-lit-latent": ("lit-shapes-clip-lit.yaml", {"name": "clip-lit-latent", "network": "zero-dce++"}),
}
#: fp16 convolutions are slow on a CPU: these run in bf16 only (the lit tests run their networks in fp16).
BF16_ONLY = ("rave", "rave-unet")
CASES = [(family, dtype) for family in sorted(FAMILIES) for dtype in ("bf16", "fp16")
         if dtype == "bf16" or family not in BF16_ONLY]
#: The lit stages shortened to a few iterations each.
LIT_STAGES = {"warmup_iterations": 2, "restart_check_iterations": 1, "warmup_batch_size": 2,
              "enhance_iterations": 2, "enhance_batch_size": 2}
CLIP_LIT_STAGES = {**LIT_STAGES, "prompt_init_iterations": 2, "rounds": 1, "prompt_iterations": 2,
                   "prompt_batch_size": 4}


def few_steps(family: str, precision: str) -> dict:
    """The family's recipe on a few small ShapesWorld images, a few optimiser steps, every step logged."""
    path, adapter = FAMILIES[family]
    recipe = OmegaConf.to_container(OmegaConf.load(find_recipe(Path(path).stem, get_plugin_manager()).path))
    recipe["adapter"] = {key: value for key, value in {**recipe["adapter"], **adapter}.items() if value is not None}
    recipe["data"].update(train_size=48, test_size=24, image_size=32)
    if "shots" in recipe["data"]:
        recipe["data"]["shots"] = 4
    recipe.setdefault("train", {}).update(batch_size=4, precision=precision, log_every=1)
    protocol = recipe["protocol"]
    if protocol["name"] in ("rave", "clip-lit"):
        protocol.update(CLIP_LIT_STAGES if protocol["name"] == "clip-lit" else LIT_STAGES)
    else:
        recipe["train"].update(epochs=1, warmup_epochs=0)
    return recipe


def assert_finite_run(run_dir: Path) -> None:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert all(math.isfinite(loss) for loss in losses)
    evaluated = [value for r in records if "eval" in r for key, value in r.items()
                 if key not in ("eval", "step", "time") and isinstance(value, float)]
    assert evaluated and not any(math.isinf(value) for value in evaluated)
    assert sum(not math.isnan(value) for value in evaluated) > len(evaluated) / 2
    checkpoint = final_checkpoint(run_dir)
    if checkpoint is not None:
        trained = load_file(checkpoint / "adapter.safetensors")
        assert trained and all(torch.isfinite(tensor).all() for tensor in trained.values())


@pytest.mark.slow
@pytest.mark.parametrize(("family", "dtype"), CASES)
def test_every_recipe_family_trains_finite_under_cpu_autocast(family, dtype, tmp_path, plugin_manager):
    recipe = few_steps(family, "bf16" if dtype == "bf16" else "fp32")
    if plugin_manager.registry.find("dataset", "shapes") is None:
        pytest.skip("mmadapt-shapes is not installed")
    if plugin_manager.registry.find("adapter", recipe["adapter"]["name"]) is None:
        pytest.skip(f"the plugin of adapter {recipe['adapter']['name']!r} is not installed")
    if dtype == "bf16":
        summary = run_recipe(recipe, tmp_path)
    else:
        with torch.autocast("cpu", dtype=torch.float16):
            summary = run_recipe(recipe, tmp_path)
    assert family == "zeroshot" or summary["steps"] >= 2
    assert_finite_run(tmp_path / "run")


def test_auto_precision_is_bf16_where_supported_fp16_on_older_gpus_and_fp32_on_a_cpu(monkeypatch):
    from mmadapt.runner import mixed_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mixed_precision("auto", cpu=False) == "no"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert mixed_precision("auto", cpu=False) == "bf16"
    assert mixed_precision("auto", cpu=True) == "no"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert mixed_precision("auto", cpu=False) == "fp16"
    assert [mixed_precision(p, cpu=False) for p in ("fp32", "bf16", "fp16")] == ["no", "bf16", "fp16"]

