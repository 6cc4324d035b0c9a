"""End-to-end runs on the tiny components: run directory, summary keys, learning, seeds, command line."""

from __future__ import annotations

import json

import pytest
from mmadapt.testing import run_recipe, tiny_recipe
from omegaconf import OmegaConf

SUMMARY_KEYS = {"name", "seed", "metrics", "params", "wall_time_s", "steps"}


def test_zeroshot_run_writes_the_documented_run_directory(tiny_plugin, tmp_path):
    summary = run_recipe(tiny_recipe(), tmp_path)
    run_dir = tmp_path / "run"
    for name in ("recipe.yaml", "resolved.yaml", "env.json", "metrics.jsonl", "summary.json"):
        assert (run_dir / name).is_file(), name
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert set(on_disk) >= SUMMARY_KEYS
    assert on_disk == summary
    assert 0.0 <= summary["metrics"]["test/accuracy"] <= 100.0
    assert summary["params"]["trainable"] == 0 and summary["params"]["total"] > 0
    assert summary["steps"] == 0


def test_linear_probe_beats_chance_clearly(tiny_plugin, tmp_path):
    recipe = tiny_recipe(
        adapter={"name": "linear-probe"},
        protocol={"name": "standard"},
        train={"epochs": 30, "optimizer": "adamw", "lr": 0.05, "weight_decay": 0.0, "log_every": 5},
    )
    summary = run_recipe(recipe, tmp_path)
    # 4 classes: chance is 25%; the colours are linearly separable in the random tower's features.
    assert summary["metrics"]["test/accuracy"] >= 75.0, summary
    assert summary["params"]["trainable"] == 32 * 4 + 4
    steps = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in line]
    losses = [step["loss"] for step in steps]
    assert losses[-1] < losses[0] * 0.5
    # Every logged step carries the training throughput since the previous log.
    assert len(steps) == summary["steps"] // 5 and all(step["images_per_s"] > 0 for step in steps)


def test_seeds_report_mean_and_std(tiny_plugin, tmp_path):
    summary = run_recipe(tiny_recipe(), tmp_path, seeds=[1, 2])
    assert summary["seeds"] == [1, 2]
    assert set(summary["mean"]) == set(summary["std"]) == {"test/accuracy"}
    assert (tmp_path / "run" / "seed1" / "summary.json").is_file()
    assert (tmp_path / "run" / "seed2" / "summary.json").is_file()


def test_runs_with_different_precisions_in_one_process(tiny_plugin, tmp_path):
    train = {"epochs": 2, "optimizer": "adamw", "lr": 0.05}
    probe = {"adapter": {"name": "linear-probe"}, "protocol": {"name": "standard"}}
    fp32 = run_recipe(tiny_recipe(**probe, train={**train, "precision": "fp32"}), tmp_path / "fp32")
    bf16 = run_recipe(tiny_recipe(**probe, train={**train, "precision": "bf16"}), tmp_path / "bf16")
    again = run_recipe(tiny_recipe(**probe, train={**train, "precision": "fp32"}), tmp_path / "again")
    assert fp32["steps"] == bf16["steps"] == again["steps"] > 0
    assert again["metrics"] == fp32["metrics"]


def test_each_unreadable_image_counts_once_in_the_summary(tiny_plugin, tmp_path):
    from PIL import Image

    root = tmp_path / "data"
    for split, n in (("train", 6), ("test", 3)):
        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 40, 220))):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), colour).save(root / split / name / f"{i}.png")
    (root / "train" / "red" / "0.png").write_bytes(b"not a png")
    (root / "train" / "blue" / "5.png").write_bytes(b"")
    (root / "test" / "red" / "2.png").write_bytes(b"\x89PNG truncated")
    recipe = tiny_recipe(
        data={"name": "imagefolder", "root": str(root), "on_bad_image": "skip", "augment": "crop-flip"},
        adapter={"name": "linear-probe"}, protocol={"name": "standard"},
        train={"epochs": 5, "batch_size": 4, "optimizer": "adamw", "lr": 0.05},
    )
    summary = run_recipe(recipe, tmp_path / "runs")
    # With augmentation the images are loaded every epoch: 5 epochs meet the two bad training images
    # again and again (and training and evaluation both meet them); each counts once.
    assert summary["skipped_images"] == 3
    assert summary["steps"] > 0


@pytest.mark.parametrize("order", ["overrides-last", "overrides-first"])
def test_overrides_work_before_or_after_options(tiny_plugin, tmp_path, order):
    from mmadapt.cli import main

    recipe = tmp_path / "tiny.yaml"
    OmegaConf.save(OmegaConf.create(tiny_recipe()), recipe)
    overrides = ["name=renamed", "seed=7"]
    options = ["--output-dir", str(tmp_path / "run")]
    tail = [*options, *overrides] if order == "overrides-last" else [*overrides, *options]
    assert main(["run", str(recipe), *tail]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["name"], summary["seed"]) == ("renamed", 7)


def test_an_unknown_option_after_the_recipe_is_still_an_error(tiny_plugin, tmp_path, capsys):
    from mmadapt.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "tiny.yaml", "--output-dir", str(tmp_path), "--sedes", "1"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --sedes 1" in capsys.readouterr().err
