"""The class-incremental and joint protocols: tasks from class orders and split specs, what a run
reports and writes, and one clear error (exit code 2) for each kind of bad input."""

from __future__ import annotations

import json

import pytest
from mmadapt import UserError
from mmadapt.testing import adapt_command, run_recipe
from mmadapt_lane.config import ClassIncrementalConfig
from mmadapt_lane.scores import forgetting
from mmadapt_lane.tasks import class_order, task_sizes
from omegaconf import OmegaConf


def lane_recipe(**sections):
    """MULTI-LANE on the tiny CLIP and a small ShapesWorld multi-label set: 4 tasks of 3 shapes."""
    recipe = {
        "name": "lane-tiny",
        "seed": 1,
        "backbone": {"name": "tiny-clip"},
        "data": {"name": "shapes", "task": "multilabel", "train_size": 48, "test_size": 32, "image_size": 32},
        "adapter": {"name": "multi-lane", "num_selectors": 4, "prompt_length": 4, "prompt_layers": 2},
        "objective": {"name": "lane-bce"},
        "protocol": {"name": "class-incremental", "split": "B0-C3"},
        "train": {
            "epochs": 1,
            "batch_size": 16,
            "optimizer": "adam",
            "lr": 0.01,
            "weight_decay": 0,
            "precision": "fp32",
            "log_every": 1,
        },
    }
    for key, value in sections.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) else value
    return recipe


@pytest.mark.parametrize(
    ("spec", "classes", "sizes"),
    [
        ("B0-C10", 80, [10] * 8),
        ("B40-C10", 80, [40] + [10] * 4),
        ("B0-C4", 20, [4] * 5),
        ("B10-C2", 20, [10] + [2] * 5),
        ("B0-C3", 12, [3] * 4),
    ],
)
def test_split_specs_cut_the_papers_tasks(spec, classes, sizes):
    assert task_sizes(spec, classes, "data") == sizes


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("B0-C7", "not a multiple of C=7"),
        ("B30-C10", "first task would need 30"),
        ("B12-C3", "single task"),
    ],
)
def test_a_split_that_does_not_fit_is_refused(spec, message):
    with pytest.raises(UserError, match=message):
        task_sizes(spec, 12, "shapes/multilabel")


@pytest.mark.parametrize("spec", ["B0C10", "b0-c10", "B0-C0", "0-10"])
def test_a_malformed_split_spec_is_a_config_error(spec):
    with pytest.raises(ValueError, match="protocol.split"):
        ClassIncrementalConfig(split=spec)


def test_class_orders():
    names = ["dog", "cat", "bird"]
    assert class_order(ClassIncrementalConfig(), names) == ["bird", "cat", "dog"]
    assert class_order(ClassIncrementalConfig(class_order="dataset"), names) == ["dog", "cat", "bird"]
    seeded = class_order(ClassIncrementalConfig(class_order="seeded", order_seed=3), names)
    assert sorted(seeded) == ["bird", "cat", "dog"]
    assert seeded == class_order(ClassIncrementalConfig(class_order="seeded", order_seed=3), list(reversed(names)))
    given = ClassIncrementalConfig(class_order="given", classes=["cat", "dog", "bird"])
    assert class_order(given, names) == ["cat", "dog", "bird"]
    with pytest.raises(UserError, match="leaves out bird"):
        class_order(ClassIncrementalConfig(class_order="given", classes=["cat", "dog"]), names)
    with pytest.raises(ValueError, match="class_order: given"):
        ClassIncrementalConfig(classes=["cat"])


def test_forgetting_is_the_mean_drop_from_the_best_earlier_value():
    matrix = [[80.0, None, None], [70.0, 60.0, None], [75.0, 50.0, 90.0]]
    assert forgetting(matrix) == pytest.approx(((80 - 75) + (60 - 50)) / 2)


def run_cli(recipe, tmp_path, capsys, *overrides):
    path = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(recipe), path)
    code = adapt_command(["run", str(path), "--output-dir", str(tmp_path / "run"), *overrides])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["protocol.split=B0-C5"], "protocol.split B0-C5 does not fit the 12 classes of shapes/multilabel"),
        (
            ["protocol.class_order=given", "protocol.classes=[circle,sqare,star]"],
            "protocol.classes names 1 unknown class(es): 'sqare' (did you mean 'square'?)",
        ),
        (
            ["data.task=shape"],
            "objective lane-bce needs a multi-label dataset, but shapes/shape is single-label; use objective lane-ce",
        ),
        (["train.weight_decay=0.0005"], "train.weight_decay is 0.0005, but protocol class-incremental needs 0"),
        (["train.param_groups={head: {weight_decay: 0.01}}"], "train.param_groups.head.weight_decay is 0.01"),
        (
            ["adapter={name: linear-probe}", "objective.name=bce"],
            "protocol class-incremental needs an adapter that is told when each task starts and ends",
        ),
    ],
)
def test_bad_input_is_one_clear_error(tiny_plugin, tmp_path, capsys, overrides, message):
    recipe = lane_recipe()
    if overrides[0].startswith("adapter="):
        recipe["adapter"], overrides = {"name": "linear-probe"}, overrides[1:]
    code, err = run_cli(recipe, tmp_path, capsys, *overrides)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_a_run_reports_every_task_and_writes_its_figure(tiny_plugin, tmp_path):
    summary = run_recipe(lane_recipe(), tmp_path)
    metrics = summary["metrics"]
    run_dir = tmp_path / "run"
    results = json.loads((run_dir / "class_incremental.json").read_text())
    assert results["tasks"] == [
        ["arrow", "circle", "crescent"],
        ["cross", "diamond", "heart"],
        ["hexagon", "pentagon", "ring"],
        ["square", "star", "triangle"],
    ]
    matrix = results["matrix"]
    assert [[v is None for v in row] for row in matrix] == [[j > i for j in range(4)] for i in range(4)]
    for i in range(4):
        assert matrix[i][: i + 1] == [metrics[f"after_task{i + 1}/map_task{j + 1}"] for j in range(i + 1)]
    assert results["map"] == [metrics[f"after_task{i}/map"] for i in range(1, 5)]
    assert metrics["final/map"] == metrics["after_task4/map"]
    assert metrics["average/map"] == pytest.approx(sum(results["map"]) / 4)
    assert metrics["final/forgetting"] == pytest.approx(forgetting(matrix))
    fixed = results["fixed_matrix"]
    assert [row[i] for i, row in enumerate(fixed)] == [matrix[i][i] for i in range(4)]
    for j in range(4):  # old lanes do not move: each task's AP on its own images stays where it was
        assert [fixed[i][j] for i in range(j, 4)] == pytest.approx([fixed[j][j]] * (4 - j), abs=1e-9)
    assert metrics["final/fixed_forgetting"] == pytest.approx(0.0, abs=1e-9)
    assert {"final/cf1", "final/of1"} <= set(metrics)
    assert (run_dir / "map_per_task.png").stat().st_size > 1000
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert {f"task{t}-epoch0001" for t in range(1, 5)} <= checkpoints
    assert summary["params"]["per_task"] == 4 * 64 + 2 * 4 * 64 * 2
    assert adapt_command(["eval", str(run_dir)]) == 0  # the saved adapter, every task served
    (evaluated,) = run_dir.glob("evals/*/summary.json")
    final = json.loads(evaluated.read_text())["metrics"]
    assert {k: final[k] for k in ("final/map", "final/cf1", "final/of1")} == {
        k: metrics[k] for k in ("final/map", "final/cf1", "final/of1")
    }


def test_a_task_trains_on_its_images_with_its_labels_only(tiny_plugin, tmp_path, monkeypatch):
    from mmadapt import Run

    seen = []
    fit = Run.fit

    def recording(self, split="train", **kwargs):
        full = self.bundle.split("train")
        classes = self.adapter.current_classes()
        expected = {full.item_key(i) for i, labels in enumerate(full.labels) if set(labels) & set(classes)}
        seen.append((kwargs["stage"], split, classes, expected))
        return fit(self, split, **kwargs)

    monkeypatch.setattr(Run, "fit", recording)
    run_recipe(lane_recipe(), tmp_path)
    assert [stage for stage, _, _, _ in seen] == ["task1", "task2", "task3", "task4"]
    for stage, split, classes, expected in seen:
        assert split.labels and all(labels and set(labels) <= set(classes) for labels in split.labels), stage
        assert {split.item_key(i) for i in range(len(split))} == expected, stage  # every image with a task class


def test_joint_trains_every_class_at_once(tiny_plugin, tmp_path):
    summary = run_recipe(lane_recipe(protocol={"name": "joint"}), tmp_path)
    metrics = summary["metrics"]
    blocks = {f"final/{kind}map_task{t}" for t in range(1, 5) for kind in ("", "fixed_")}
    assert blocks | {"final/map", "final/cf1", "final/of1"} == set(metrics)
    assert metrics["final/fixed_map_task4"] == metrics["final/map_task4"]
    assert summary["params"]["per_task"] * 1 + summary["params"]["head"] == summary["params"]["trainable"]
    assert {p.name for p in (tmp_path / "run" / "checkpoints").iterdir()} == {"joint-epoch0001"}


def test_seq_prompt_runs_on_the_same_protocol(tiny_plugin, tmp_path):
    recipe = lane_recipe()
    recipe["adapter"] = {"name": "seq-prompt", "prompt_length": 4, "prompt_layers": 2}
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    assert {"final/map", "average/map", "final/forgetting"} <= set(metrics)
    assert metrics["final/fixed_forgetting"] != 0  # the shared prompt moves: old classes drift
