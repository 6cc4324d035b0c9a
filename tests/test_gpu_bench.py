"""`benchmarks/gpu.sh` on a CPU: every method's step runs at tiny sizes in fp32 and bf16, and the JSON
holds a finite, positive row per case with the CUDA-only fields empty; the peak table reads card names."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import torch
from mmadapt import TrainingStep
from mmadapt.step_timing import measure_training_step, peak_tflops

REPO = Path(__file__).resolve().parents[1]
#: The methods the bundled plugins offer to the benchmark.
BUNDLED = {"coop": "mmadapt_prompts", "ept": "mmadapt_ept", "multi-lane": "mmadapt_lane", "rave": "mmadapt_lit"}


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="times the CPU path; on a GPU run benchmarks/gpu.sh itself")
def test_gpu_script_runs_every_bundled_method_at_tiny_sizes_on_a_cpu(tmp_path):
    installed = [method for method, package in BUNDLED.items() if importlib.util.find_spec(package)]
    subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(tmp_path), "--steps", "1"],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    record = json.loads((tmp_path / "gpu-bench.json").read_text())
    assert record["device"].startswith("CPU") and record["batch_size"] == 4
    cases = {(row["method"], row["precision"], row["compile"]) for row in record["results"]}
    assert cases == {(m, p, False) for m in installed for p in ("fp32", "bf16")}, record["skipped"]
    for row in record["results"]:
        assert row["step_s"] > 0 and math.isclose(row["images_per_s"] * row["step_s"], 4)
        assert row["flops"] > 0 and row["achieved_tflops"] > 0
        assert row["peak_memory_gib"] is None and row["mfu"] is None


def test_flops_are_those_of_forward_and_backward():
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    batch = {"x": torch.randn(8, 64)}
    measured = measure_training_step(TrainingStep(model, batch, lambda m, b: m(b["x"]).sum(), 8), steps=1, warmup=0)
    # Forward 2*8*64*32 multiply-adds as FLOPs; backward as many again for the weight gradient (the
    # input needs none).
    assert measured["flops"] == 2 * 2 * 8 * 64 * 32
    assert measured["images_per_s"] == pytest.approx(8 / measured["step_s"])


def test_peak_table_matches_card_names_most_specific_first():
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peak_tflops("NVIDIA H100 PCIe", "fp32") == 378.0
    assert peak_tflops("NVIDIA H200 NVL", "bf16") == 835.5
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0
    assert peak_tflops("NVIDIA GeForce RTX 4090", "bf16") is None
