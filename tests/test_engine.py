"""Engine behaviour: Dassl schedule, gradient accumulation, non-finite loss guard, feature caching."""

from __future__ import annotations

import math

import pytest
import torch
from mmadapt.config import TrainConfig
from mmadapt.errors import NonFiniteLossError
from mmadapt.optim import build_scheduler
from mmadapt.sampling import GlobalBatchSampler, batches_of
from mmadapt.testing import run_recipe, tiny_recipe
from safetensors.torch import load_file


def test_dassl_cosine_trace_per_epoch():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [param], "lr": 0.0035, "name": "default"}], lr=0.0035)
    train = TrainConfig(lr=0.0035, warmup_epochs=1, warmup_lr=1e-5)
    scheduler = build_scheduler(optimizer, train, epochs=5, steps_per_epoch=7)
    trace = []
    for _ in range(5):
        trace.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert [float(f"{lr:.4g}") for lr in trace] == [1e-5, 3.5e-3, 3.166e-3, 2.291e-3, 1.209e-3]


def test_per_step_schedule_reaches_the_cosine_floor_gradually():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [param], "lr": 0.1, "name": "default"}], lr=0.1)
    scheduler = build_scheduler(optimizer, TrainConfig(lr=0.1, schedule_unit="step"), epochs=2, steps_per_epoch=5)
    trace = []
    for _ in range(10):
        trace.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert trace[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(trace, trace[1:]))
    assert trace[-1] == pytest.approx(0.05 * (1 + math.cos(math.pi * 9 / 10)))


def test_batches_drop_the_tail_only_when_a_full_batch_exists():
    assert [len(r) for r in batches_of(10, 4)] == [4, 4]
    assert [len(r) for r in batches_of(3, 4)] == [3]
    assert [len(r) for r in batches_of(10, 4, drop_last=False)] == [4, 4, 2]


def test_ranks_split_each_global_batch():
    one = list(GlobalBatchSampler(12, 4, shuffle=True, seed=3))
    rank0 = list(GlobalBatchSampler(12, 4, shuffle=True, seed=3, rank=0, world=2))
    rank1 = list(GlobalBatchSampler(12, 4, shuffle=True, seed=3, rank=1, world=2))
    assert [sorted(a + b) for a, b in zip(rank0, rank1)] == [sorted(batch) for batch in one]


def lora_weights(tmp_path, **train):
    recipe = tiny_recipe(adapter={"name": "lora", "r": 2}, protocol={"name": "standard"},
                         train={"epochs": 2, "optimizer": "sgd", "momentum": 0.0, "lr": 0.05, **train})
    run_recipe(recipe, tmp_path)
    checkpoint = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    return load_file(str(checkpoint / "adapter.safetensors"))


def test_gradient_accumulation_equals_the_large_batch(tiny_plugin, tmp_path):
    big = lora_weights(tmp_path / "big", batch_size=16, grad_accum=1)
    micro = lora_weights(tmp_path / "micro", batch_size=8, grad_accum=2)
    # Two consecutive micro-batches of 8 hold the same items as one batch of 16 (same seeded order).
    for name in big:
        torch.testing.assert_close(big[name], micro[name], atol=1e-6, rtol=1e-5)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tiny_plugin, tmp_path):
    recipe = tiny_recipe(adapter={"name": "linear-probe"}, protocol={"name": "standard"},
                         train={"epochs": 8, "lr": 1e30, "optimizer": "sgd"})
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        run_recipe(recipe, tmp_path)
    assert not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize(("adapter", "options"), [("zeroshot", {}), ("linear-probe", {"init": "zeroshot"}),
                                                  ("lora", {"tower": "text", "r": 2})])
def test_cached_image_features_reproduce_the_image_path(tiny_plugin, plugin_manager, tmp_path, adapter, options):
    from mmadapt.recipe import validate_recipe
    from mmadapt.rundir import RunDir
    from mmadapt.runner import build_run
    from omegaconf import OmegaConf

    recipe = validate_recipe(OmegaConf.create(tiny_recipe(adapter={"name": adapter, **options})), "tiny.yaml", [],
                             registry=plugin_manager.registry)
    run, _ = build_run(recipe, RunDir.create("tiny", tmp_path), plugin_manager)
    assert run.adapter.frozen_image_features
    cached = run._features.serve(run.adapter, run.bundle.split("test"), "test", augment=False)
    images = run.bundle.split("test").with_transform(run._context.transforms[1])
    run.adapter.eval()
    with torch.no_grad():
        for i in (0, 5, 17):
            from_cache = run.adapter({"image_features": cached[i]["image_features"][None]})["logits"]
            from_images = run.adapter({"image": images[i]["image"][None]})["logits"]
            torch.testing.assert_close(from_cache, from_images, atol=1e-5, rtol=1e-5)
            assert int(cached[i]["label"]) == int(images[i]["label"])


def test_merging_skipped_images_over_processes_is_repeatable(monkeypatch):
    """Merges happen at every checkpoint and evaluation; repeating one must not count anything twice."""
    import accelerate.utils
    from mmadapt.skipped import SkippedImages

    skipped = SkippedImages()
    other_process = [({"b.png", "c.png"}, 1)]  # the other process's names and its new unnamed drops

    def gather_object(mine):
        gathered = mine + other_process
        other_process[:] = [(other_process[0][0], 0)]  # after a merge the other process has nothing new
        return gathered

    monkeypatch.setattr(accelerate.utils, "gather_object", gather_object)
    skipped.note({"skipped": 3, "skipped_keys": ["a.png", "b.png"]})  # one drop without a name
    skipped.note({"skipped": 1, "skipped_keys": ["a.png"]})  # met again: still one file
    assert skipped.count == 3  # a, b + 1 unnamed
    for _ in range(4):
        skipped.merge(num_processes=2)
        assert skipped.count == 5  # a, b, c + 1 unnamed here + 1 unnamed there
