"""`train.log_with`: a run's scalars reach accelerate's trackers; TensorBoard's event file is read back."""

from __future__ import annotations

import json

import pytest
from mmadapt.errors import RecipeError
from mmadapt.testing import check_recipe, run_recipe, tiny_recipe
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_a_run_writes_its_scalars_to_tensorboard(tmp_path, tiny_plugin, one_torch_thread):
    recipe = tiny_recipe(adapter={"name": "linear-probe"}, protocol={"name": "standard", "evaluate_initial": True},
                         train={"epochs": 2, "log_every": 1, "log_with": ["tensorboard"]})
    run_recipe(recipe, tmp_path)
    run_dir = tmp_path / "run"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [record for record in records if "loss" in record]
    evals = [record for record in records if "eval" in record]
    assert len(steps) >= 2 and len(evals) == 2  # before and after training

    (folder,) = (run_dir / "trackers").iterdir()  # one run: trackers/<recipe name>/
    events = EventAccumulator(str(folder))
    events.Reload()
    logged = set(events.Tags()["scalars"])
    lrs = {key for key in steps[0] if key.startswith("lr/")}
    assert lrs and {"train/loss", "train/images_per_s", *(f"train/{lr}" for lr in lrs)} <= logged
    for key in ("loss", "images_per_s", *lrs):
        read = [(event.step, event.value) for event in events.Scalars(f"train/{key}")]
        assert read == [(record["step"], pytest.approx(record[key], rel=1e-6)) for record in steps], key
    metrics = [(record["step"], record["test/accuracy"]) for record in evals if "test/accuracy" in record]
    read = [(event.step, event.value) for event in events.Scalars("test/accuracy")]
    assert read == [(step, pytest.approx(value, rel=1e-6)) for step, value in metrics]
    assert [step for step, _ in read] == [0, steps[-1]["step"]]  # before training, and after it


def test_an_unknown_tracker_names_the_key_and_the_choices(tiny_plugin):
    with pytest.raises(RecipeError, match=r"train.log_with: unknown tracker 'tensorbord'; one of tensorboard, wandb"):
        check_recipe(tiny_recipe(train={"log_with": ["tensorbord"]}))


def test_a_tracker_whose_package_is_missing_names_the_extra_to_install(tiny_plugin, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(RecipeError, match=r"tensorboard package, which is not installed; fix: pip install "
                                          r"'mmadapt\[tensorboard\]'"):
        check_recipe(tiny_recipe(train={"log_with": ["tensorboard"]}))
