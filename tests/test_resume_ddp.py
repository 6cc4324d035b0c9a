"""Exact resume after SIGKILL, and data-parallel training on 2 CPU processes (gloo)."""

from __future__ import annotations

import json
import shutil
import signal
import sys

import pytest
import torch
from mmadapt.testing import tiny_recipe
from omegaconf import OmegaConf
from plugin_dists import run_adapt
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def write_recipe(path, adapter=None, **train):
    recipe = tiny_recipe(
        adapter=adapter or {"name": "lora", "r": 2},
        protocol={"name": "save-ranks"},
        data={"train_per_class": 16},
        train={"epochs": 4, "batch_size": 8, "optimizer": "sgd", "lr": 0.05, "warmup_epochs": 1, "log_every": 1,
               **train},
        eval={"metrics": ["accuracy", "item-order"], "batch_size": 5},
    )
    OmegaConf.save(OmegaConf.create(recipe), path)
    return path


def test_resume_after_sigkill_matches_uninterrupted_run(env_dir, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    full = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "full")], path=env_dir)
    assert full.returncode == 0, full.stderr

    killed = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], path=env_dir,
                       env={"KILL_AT_STEP": "11"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "killed" / "summary.json").exists()
    assert list((tmp_path / "killed" / "checkpoints").glob("train-epoch*"))

    resumed = run_adapt(["run", "--resume", str(tmp_path / "killed")], path=env_dir)
    assert resumed.returncode == 0, resumed.stderr
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed_summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert resumed_summary["metrics"] == full_summary["metrics"]
    assert resumed_summary["steps"] == full_summary["steps"]
    full_weights = load_file(str(tmp_path / "full" / "rank0.safetensors"))
    resumed_weights = load_file(str(tmp_path / "killed" / "rank0.safetensors"))
    assert full_weights.keys() == resumed_weights.keys()
    for name in full_weights:
        assert torch.equal(full_weights[name], resumed_weights[name]), name


def test_resume_of_a_killed_seeds_run_finishes_every_seed(env_dir, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    seeds = ["--seeds", "1,2,3"]
    full = run_adapt(["run", str(recipe), *seeds, "--output-dir", str(tmp_path / "full")], path=env_dir)
    assert full.returncode == 0, full.stderr

    killed = run_adapt(["run", str(recipe), *seeds, "--output-dir", str(tmp_path / "killed")], path=env_dir,
                       env={"KILL_AT_STEP": "11", "KILL_SEED": "2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "killed" / "seed1" / "summary.json").is_file()
    assert not (tmp_path / "killed" / "seed2" / "summary.json").exists()
    assert not (tmp_path / "killed" / "seed3").exists()
    seed1_written = (tmp_path / "killed" / "seed1" / "summary.json").stat().st_mtime_ns

    resumed = run_adapt(["run", "--resume", str(tmp_path / "killed")], path=env_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "killed" / "seed1" / "summary.json").stat().st_mtime_ns == seed1_written  # kept, not rerun
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed_summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert resumed_summary["seeds"] == [1, 2, 3]
    for key in ("metrics", "mean", "std", "steps"):
        assert resumed_summary[key] == full_summary[key], key
    for seed in (1, 2, 3):
        full_weights = load_file(str(tmp_path / "full" / f"seed{seed}" / "rank0.safetensors"))
        resumed_weights = load_file(str(tmp_path / "killed" / f"seed{seed}" / "rank0.safetensors"))
        for name in full_weights:
            assert torch.equal(full_weights[name], resumed_weights[name]), (seed, name)
    seed_folder = run_adapt(["run", "--resume", str(tmp_path / "killed" / "seed2")], path=env_dir)
    assert seed_folder.returncode == 0, seed_folder.stderr  # a seed folder is a run directory of its own

    # A finished seed whose settings no longer match stops the resume before anything runs.
    (tmp_path / "killed" / "summary.json").unlink()
    resolved = tmp_path / "killed" / "seed1" / "resolved.yaml"
    resolved.write_text(resolved.read_text().replace("lr: 0.05", "lr: 0.5"))
    refused = run_adapt(["run", "--resume", str(tmp_path / "killed")], path=env_dir)
    assert refused.returncode == 2 and "seed1: resolved.yaml no longer matches" in refused.stderr
    assert not (tmp_path / "killed" / "summary.json").exists()


def test_resume_refuses_a_changed_recipe(env_dir, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", epochs=1)
    assert run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "run")], path=env_dir).returncode == 0
    saved = tmp_path / "run" / "recipe.yaml"
    saved.write_text(saved.read_text().replace("lr: 0.05", "lr: 0.5"))
    refused = run_adapt(["run", "--resume", str(tmp_path / "run")], path=env_dir)
    assert refused.returncode == 2 and "no longer matches" in refused.stderr


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
@pytest.mark.parametrize("adapter", [{"name": "lora", "r": 2}, {"name": "linear-probe"}],
                         ids=["images-every-step", "cached-features"])
def test_two_process_data_parallel_matches_one_process(env_dir, tmp_path, adapter):
    recipe = write_recipe(tmp_path / "recipe.yaml", adapter)
    single = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "single")], path=env_dir)
    assert single.returncode == 0, single.stderr
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    ddp = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "ddp")], path=env_dir, launcher=launcher,
                    env={"OMP_NUM_THREADS": "1"})
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0 = load_file(str(tmp_path / "ddp" / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "ddp" / "rank1.safetensors"))
    one = load_file(str(tmp_path / "single" / "rank0.safetensors"))
    for name in one:
        assert torch.equal(rank0[name], rank1[name]), f"ranks disagree on {name}"
        torch.testing.assert_close(rank0[name], one[name], atol=1e-4, rtol=1e-3)
    single_acc = json.loads((tmp_path / "single" / "summary.json").read_text())["metrics"]["test/accuracy"]
    ddp_acc = json.loads((tmp_path / "ddp" / "summary.json").read_text())["metrics"]["test/accuracy"]
    assert abs(single_acc - ddp_acc) <= 100 / 32  # at most one of 32 test images differs
    # Evaluation is shared: each process encodes its share of the 32 test images, and both report the
    # metrics of all of them.
    single_eval = json.loads((tmp_path / "single" / "rank0-eval.json").read_text())
    evals = [json.loads((tmp_path / "ddp" / f"rank{r}-eval.json").read_text()) for r in (0, 1)]
    assert single_eval["items"] == 32
    # Each global batch of 5 is split round-robin (3 + 2), so the ranks' shares are 19 and 13.
    assert [e["items"] for e in evals] == [19, 13]
    assert evals[0]["metrics"] == evals[1]["metrics"]
    assert evals[0]["metrics"]["test/in_order"] == 100.0  # the gathered items reach the metrics in order
