"""The multitask protocol (merged label space, masking, per-task evaluation) and mvlpt's init_from."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from mmadapt import DataBundle, Task, UserError, load_run
from mmadapt.testing import run_recipe, tiny_recipe
from mmadapt_prompts.merged import merged_split, merged_task
from mmadapt_prompts.multitask import masked_objective, task_names
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

SOURCE = {"name": "tiny-colours", "n_classes": 3, "seed": 5, "shots": 4}


def multitask_recipe(**protocol):
    return tiny_recipe(
        data={"n_classes": 4, "shots": 8},
        adapter={"name": "mvlpt", "n_ctx": 4},
        protocol={"name": "multitask", "datasets": [SOURCE], **protocol},
        train={"epochs": 2, "optimizer": "adamw", "lr": 0.01},
    )


def test_merged_split_offsets_labels_and_loads_from_each_task(tiny_plugin, plugin_manager):
    colours = plugin_manager.registry.get("dataset", "tiny-colours")
    config_cls = colours.config
    first, second = colours.build(config_cls(n_classes=4)), colours.build(config_cls(n_classes=3, seed=5))
    bundles = [first, second]
    merged = merged_split([b.split("test") for b in bundles], bundles, "error")
    assert len(merged) == len(first.split("test")) + len(second.split("test"))
    assert merged.n_classes == 7
    n_first = len(first.split("test"))
    assert merged.labels[:n_first] == first.split("test").labels
    assert merged.labels[n_first:] == [label + 4 for label in second.split("test").labels]
    item = merged[n_first + 2]
    assert torch.equal(item["image"], second.split("test")[2]["image"])
    assert item["label"].item() == second.split("test").labels[2] + 4
    task = merged_task(bundles, task_names(bundles))
    assert task.classnames == first.task.classnames + second.task.classnames
    assert task_names(bundles) == ["tiny-colours", "tiny-colours-2"]


def test_masking_keeps_each_image_in_its_own_tasks_classes():
    task_of_class = torch.tensor([0, 0, 0, 1, 1])
    seen = {}

    def objective(outputs, batch):
        seen["logits"] = outputs["logits"]
        return F.cross_entropy(outputs["logits"], batch["label"]), {}

    logits = torch.randn(3, 5)
    labels = torch.tensor([1, 4, 0])
    loss, _ = masked_objective(objective, task_of_class)({"logits": logits}, {"label": labels})
    masked = seen["logits"]
    assert torch.isinf(masked[0, 3:]).all() and torch.equal(masked[0, :3], logits[0, :3])
    assert torch.isinf(masked[1, :3]).all() and torch.equal(masked[1, 3:], logits[1, 3:])
    expected = torch.stack([
        F.cross_entropy(logits[0:1, :3], labels[0:1]),
        F.cross_entropy(logits[1:2, 3:], labels[1:2] - 3),
        F.cross_entropy(logits[2:3, :3], labels[2:3]),
    ]).mean()
    torch.testing.assert_close(loss, expected)


def test_multitask_run_trains_on_every_task_and_reports_each(tiny_plugin, tmp_path):
    summary = run_recipe(multitask_recipe(), tmp_path)
    metrics = summary["metrics"]
    assert set(metrics) == {"tiny-colours/accuracy", "tiny-colours-2/accuracy", "mean/accuracy"}
    assert metrics["mean/accuracy"] == pytest.approx(
        (metrics["tiny-colours/accuracy"] + metrics["tiny-colours-2/accuracy"]) / 2)
    sampled = json.loads((tmp_path / "run" / "few_shot.json").read_text())
    assert len(sampled["extra"]["datasets.0"]["indices"]["train"]) == 3 * 4
    # 4 x 8 + 3 x 4 training images, batch 16: 2 steps per epoch.
    assert summary["steps"] == 2 * 2
    assert summary["params"]["trainable"] == 4 * 64
    resolved = OmegaConf.load(tmp_path / "run" / "resolved.yaml")
    assert resolved.protocol.datasets[0].train_per_class == 16  # a default the recipe leaves out
    finished = load_run(tmp_path / "run")  # the further task's items come back from few_shot.json
    assert finished.adapter.task.n_classes == 4 + 3


def test_multitask_validates_its_dataset_sections(tiny_plugin, tmp_path):
    bad = [{"name": "tiny-colour"}, {"name": "tiny-colours", "n_clases": 3}, {"name": "tiny-colours", "n_classes": 99},
           {"root": "x"}]
    with pytest.raises(UserError, match="problem\\(s\\) in the recipe") as error:
        run_recipe(multitask_recipe(datasets=bad), tmp_path)
    message = str(error.value)
    assert "protocol.datasets[0].name: unknown dataset 'tiny-colour' (did you mean 'tiny-colours'?)" in message
    assert "protocol.datasets[1].n_clases: unknown key (dataset 'tiny-colours') (did you mean 'n_classes'?)" in message
    assert "protocol.datasets[3]: must be a mapping with a 'name' key" in message
    # Construction-time checks of the dataset itself surface when it is built.
    with pytest.raises(ValueError, match="n_classes must be between 2 and 8"):
        run_recipe(multitask_recipe(datasets=[bad[2]]), tmp_path / "build")


def test_a_further_dataset_must_share_the_data_sections_augmentation(tiny_plugin, tmp_path):
    with pytest.raises(UserError, match="sets augment='crop-flip' but data.augment is 'none'"):
        run_recipe(multitask_recipe(datasets=[{**SOURCE, "augment": "crop-flip"}]), tmp_path)


def test_mvlpt_starts_from_the_source_runs_context(tiny_plugin, make_adapter, backbone, tmp_path):
    run_recipe(multitask_recipe(), tmp_path / "source")
    checkpoint = tmp_path / "source" / "run" / "checkpoints" / "train-epoch0002" / "adapter.safetensors"
    learned = load_file(str(checkpoint))["prompt.ctx"]
    adapter = make_adapter("mvlpt", backbone, classnames=["cat", "dog"], init_from=str(tmp_path / "source" / "run"))
    assert torch.equal(adapter.prompt.ctx.detach(), learned)
    assert adapter.prompt.position == "middle"

    target = tiny_recipe(data={"n_classes": 5, "shots": 4}, protocol={"name": "standard"},
                         adapter={"name": "mvlpt", "init_from": str(tmp_path / "source" / "run")},
                         train={"epochs": 1})
    summary = run_recipe(target, tmp_path / "target")
    assert summary["params"]["trainable"] == learned.numel()


def test_mvlpt_averages_the_seeds_of_a_seeds_run(make_adapter, backbone, tmp_path):
    contexts = [torch.full((4, 64), float(seed)) for seed in (1, 2, 3)]
    for seed, ctx in zip((1, 2, 3), contexts):
        folder = tmp_path / f"seed{seed}" / "checkpoints" / "train-epoch0002"
        folder.mkdir(parents=True)
        save_file({"prompt.ctx": ctx}, str(folder / "adapter.safetensors"))
    adapter = make_adapter("mvlpt", backbone, init_from=str(tmp_path))
    assert torch.equal(adapter.prompt.ctx.detach(), torch.full((4, 64), 2.0))

    with pytest.raises(UserError, match="adapter.n_ctx=8 but the init_from run learned 4"):
        make_adapter("mvlpt", backbone, init_from=str(tmp_path), n_ctx=8)
    shutil.rmtree(tmp_path / "seed2")
    save_file({"prompt.ctx": torch.zeros(2, 4, 64)}, str(tmp_path / "seed3" / "checkpoints" / "train-epoch0002" /
                                                      "adapter.safetensors"))
    with pytest.raises(UserError, match="different shapes"):
        make_adapter("mvlpt", backbone, init_from=str(tmp_path))
    with pytest.raises(UserError, match="has no checkpoints"):
        make_adapter("mvlpt", backbone, init_from=str(tmp_path / "seed1" / "checkpoints"))


def test_multitask_needs_single_label_tasks():
    bundles = [DataBundle(Task(["a", "b"]), {}), DataBundle(Task(["c"], kind="multi-label"), {})]
    with pytest.raises(UserError, match="task 'second' is multi-label"):
        merged_task(bundles, ["first", "second"])
