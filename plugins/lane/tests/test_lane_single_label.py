"""Single-label class-incremental learning: the task cut, lane-ce's masking, accuracy over the seen
classes against a hand count, old logits bit-identical, the objectives' kind checks, and the protocol
end to end (what it reports and writes, and that it learns)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from lane_testing import images, incremental_task, make_adapter
from mmadapt import TensorSplit, UserError
from mmadapt.testing import adapt_command, run_recipe
from mmadapt_lane.accuracy import SeenClassAccuracy
from mmadapt_lane.objective import build_lane_bce, build_lane_ce
from mmadapt_lane.protocol import task_split
from mmadapt_lane.scores import forgetting
from test_lane_protocol import lane_recipe


def single_label_task(sizes=(3, 2, 2, 1)):
    task = incremental_task(list(sizes))
    task.kind = "single-label"
    return task


def class_ids(task, count: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randint(task.n_classes, (count,), generator=torch.Generator().manual_seed(seed))


def single_recipe(**sections):
    """:func:`lane_recipe` on ShapesWorld's single-label ``shape`` task with ``lane-ce``."""
    recipe = lane_recipe(**sections)
    recipe["data"] = {**recipe["data"], "task": "shape", **sections.get("data", {})}
    recipe["objective"] = sections.get("objective", {"name": "lane-ce"})
    return recipe


# -- the task cut -----------------------------------------------------------------------------------


def test_a_task_holds_every_image_of_its_classes_and_no_other():
    labels = [0, 3, 1, 7, 3, 5, 2, 6, 4, 0, 5, 1]
    train = TensorSplit({"position": torch.arange(len(labels))}, labels, 8)
    for block in incremental_task().blocks:
        part = task_split(train, block)
        positions = [int(part[i]["position"]) for i in range(len(part))]
        assert positions == [i for i, label in enumerate(labels) if label in block]
        assert part.labels == [labels[i] for i in positions]
        assert part.n_classes == block.stop and not part.multi_label


def test_a_multi_label_task_holds_every_image_with_any_of_its_classes():
    labels = [[0], [3, 4], [1, 7], [], [5, 6], [2, 3], [7]]
    train = TensorSplit({"position": torch.arange(len(labels))}, labels, 8, multi_label=True)
    part = task_split(train, range(3, 5))
    assert [int(part[i]["position"]) for i in range(len(part))] == [1, 5]
    assert part.labels == [[3, 4], [3]]


def test_the_protocol_trains_each_task_on_exactly_its_images(tiny_plugin, tmp_path, monkeypatch):
    from mmadapt import Run

    seen = []
    fit = Run.fit

    def recording(self, split="train", **kwargs):
        full = self.bundle.split("train")
        classes = self.adapter.current_classes()
        expected = sorted(full.item_key(i) for i, label in enumerate(full.labels) if label in classes)
        seen.append((sorted(split.item_key(i) for i in range(len(split))), expected, split.labels, classes))
        return fit(self, split, **kwargs)

    monkeypatch.setattr(Run, "fit", recording)
    run_recipe(single_recipe(), tmp_path)
    assert len(seen) == 4
    for keys, expected, labels, classes in seen:
        assert keys == expected and keys
        assert all(label in classes for label in labels)


# -- lane-ce ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("current", [0, 2])
def test_lane_ce_is_cross_entropy_among_the_current_classes_with_no_gradient_elsewhere(backbone, current):
    adapter = make_adapter(backbone, task=single_label_task(), inference="task")
    block = adapter.class_blocks[current]
    pixels = images(backbone)
    targets = block.start + torch.arange(6) % len(block)
    adapter.start_task(current)
    adapter.train()
    outputs = adapter({"image": pixels})
    loss, _ = build_lane_ce(None, adapter)(outputs, {"label": targets})
    by_hand = F.cross_entropy(outputs["logits"][:, block.start : block.stop], targets - block.start)
    torch.testing.assert_close(loss, by_hand + outputs["key_loss"])
    loss.backward()
    others = [t for t in range(adapter.num_tasks) if t != current]
    rows = torch.ones(adapter.task.n_classes, dtype=torch.bool)
    rows[block.start : block.stop] = False
    for grad in (
        adapter.selectors.grad[others],
        adapter.prompts.grad[:, :, others],
        adapter.keys.grad[others],
        adapter.head.weight.grad[rows],
        adapter.head.bias.grad[rows],
    ):
        assert torch.equal(grad, torch.zeros_like(grad))
    assert adapter.selectors.grad[current].abs().sum() > 0
    assert adapter.head.weight.grad[~rows].abs().sum() > 0


def test_lane_ce_masks_with_minus_infinity_not_zero():
    """A class outside the task with a large logit changes nothing: it is out of the softmax."""
    task = single_label_task()

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.task = task

        def current_classes(self):
            return range(3, 5)

    logits = torch.tensor([[9.0, 9.0, 9.0, 1.0, 2.0, 9.0, 9.0, 9.0]], requires_grad=True)
    loss, _ = build_lane_ce(None, Fixed())({"logits": logits}, {"label": torch.tensor([4])})
    torch.testing.assert_close(loss, -torch.log_softmax(torch.tensor([1.0, 2.0]), 0)[1])
    loss.backward()
    assert torch.equal(logits.grad[0, [0, 1, 2, 5, 6, 7]], torch.zeros(6))
    with pytest.raises(ValueError, match="got class 0 while training the task of classes 3..4"):
        build_lane_ce(None, Fixed())({"logits": logits}, {"label": torch.tensor([0])})


def test_each_objective_refuses_the_other_kind_of_data(backbone):
    single = make_adapter(backbone, task=single_label_task())
    multi = make_adapter(backbone)
    with pytest.raises(UserError, match="objective lane-bce needs a multi-label dataset.*use objective lane-ce"):
        build_lane_bce(None, single)
    with pytest.raises(UserError, match="objective lane-ce needs a single-label dataset.*use objective lane-bce"):
        build_lane_ce(None, multi)


def test_old_class_logits_are_bit_identical_after_later_single_label_tasks(backbone):
    adapter = make_adapter(backbone, task=single_label_task())
    pixels = images(backbone)
    objective = build_lane_ce(None, adapter)
    history = []
    for index, block in enumerate(adapter.class_blocks):
        adapter.start_task(index)
        adapter.train()
        targets = block.start + torch.arange(6) % len(block)
        optimizer = torch.optim.Adam([p for p in adapter.parameters() if p.requires_grad], lr=0.05)
        for _ in range(3):
            loss, _ = objective(adapter({"image": pixels}), {"label": targets})
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        adapter.end_task(index)
        adapter.eval()
        with torch.no_grad():
            history.append(adapter({"image": pixels})["logits"])
    for later in range(1, len(history)):
        old = slice(0, adapter.class_blocks[later - 1].stop)
        assert torch.equal(history[later][:, old], history[later - 1][:, old]), f"after task {later + 1}"


# -- accuracy over seen classes ---------------------------------------------------------------------


def test_accuracy_over_seen_classes_matches_a_hand_count():
    blocks = [range(0, 2), range(2, 4)]
    # Class 4 belongs to an unseen task: its large logit must not count.
    logits = torch.tensor(
        [
            [3.0, 1.0, 0.0, 0.0, 9.0],  # label 0: predicted 0 (right), within task 1: 0 (right)
            [3.0, 1.0, 0.0, 0.0, 9.0],  # label 1: predicted 0 (wrong), within task 1: 0 (wrong)
            [3.0, 0.0, 1.0, 2.0, 9.0],  # label 2: predicted 0 (wrong), within task 2: 3 (wrong)
            [0.0, 0.0, 1.0, 2.0, 9.0],  # label 3: predicted 3 (right), within task 2: 3 (right)
            [5.0, 0.0, 4.0, 1.0, 9.0],  # label 2: predicted 0 (wrong), within task 2: 2 (right)
        ]
    )
    labels = torch.tensor([0, 1, 2, 3, 2])
    metric = SeenClassAccuracy(range(4), blocks)
    metric.update({"logits": logits[:2]}, {"label": labels[:2]})
    metric.update({"logits": logits[2:]}, {"label": labels[2:]})
    values = metric.compute()
    assert values["acc"] == pytest.approx(100 * 2 / 5)
    assert values["acc_task1"] == pytest.approx(100 * 1 / 2)
    assert values["acc_task2"] == pytest.approx(100 * 1 / 3)
    assert values["task_mean_acc"] == pytest.approx((50 + 100 / 3) / 2)
    assert values["task_aware_acc"] == pytest.approx(100 * 3 / 5)
    metric.reset()
    assert metric.compute()["acc"] != metric.compute()["acc"]  # NaN: nothing fed


# -- the protocol -----------------------------------------------------------------------------------


def test_a_single_label_run_reports_accuracy_per_task(tiny_plugin, tmp_path):
    summary = run_recipe(single_recipe(), tmp_path)
    metrics = summary["metrics"]
    run_dir = tmp_path / "run"
    results = json.loads((run_dir / "class_incremental.json").read_text())
    assert results["tasks"][0] == ["arrow", "circle", "crescent"]
    matrix = results["matrix"]
    assert [[v is None for v in row] for row in matrix] == [[j > i for j in range(4)] for i in range(4)]
    for i in range(4):
        assert matrix[i][: i + 1] == [metrics[f"after_task{i + 1}/acc_task{j + 1}"] for j in range(i + 1)]
    assert results["acc"] == [metrics[f"after_task{i}/acc"] for i in range(1, 5)]
    assert metrics["final/acc"] == metrics["after_task4/acc"]
    assert metrics["average/acc"] == pytest.approx(sum(results["acc"]) / 4)
    assert metrics["final/forgetting"] == pytest.approx(forgetting(matrix))
    assert metrics["after_task1/acc"] == metrics["after_task1/acc_task1"] == metrics["after_task1/task_aware_acc"]
    assert not any("map" in key for key in metrics)
    assert (run_dir / "accuracy_per_task.png").stat().st_size > 1000
    assert not (run_dir / "map_per_task.png").exists()
    assert adapt_command(["eval", str(run_dir)]) == 0  # the saved adapter, every task served
    (evaluated,) = run_dir.glob("evals/*/summary.json")
    final = json.loads(evaluated.read_text())["metrics"]
    assert {k: final[k] for k in ("final/acc", "final/task_aware_acc")} == {
        k: metrics[k] for k in ("final/acc", "final/task_aware_acc")
    }


def test_joint_scores_single_label_data_over_every_class(tiny_plugin, tmp_path):
    metrics = run_recipe(single_recipe(protocol={"name": "joint"}), tmp_path)["metrics"]
    tasks = {f"final/acc_task{t}" for t in range(1, 5)}
    assert set(metrics) == tasks | {"final/acc", "final/task_aware_acc", "final/task_mean_acc"}


@pytest.mark.parametrize(
    ("data", "objective", "message"),
    [
        (
            {"task": "shape"},
            "lane-bce",
            "objective lane-bce needs a multi-label dataset, but shapes/shape is single-label",
        ),
        (
            {"task": "multilabel"},
            "lane-ce",
            "objective lane-ce needs a single-label dataset, but shapes/multilabel is multi-label",
        ),
    ],
)
def test_an_objective_of_the_other_kind_is_one_clear_error(tiny_plugin, tmp_path, capsys, data, objective, message):
    from test_lane_protocol import run_cli

    recipe = single_recipe(data=data, objective={"name": objective})
    code, err = run_cli(recipe, tmp_path, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.slow
def test_multi_lane_learns_each_single_label_task(plugin_manager, tmp_path):
    """shapes-clip's lanes learn: a task's 3 shapes told apart well above chance (33%) after a short training
    (480 images, 3 epochs; the full recipe reaches about 95%), and still with the task known after all 4 tasks."""
    recipe = single_recipe(
        backbone={"name": "shapes-clip"},
        data={"train_size": 480, "test_size": 240, "image_size": 64},
        adapter={"num_selectors": 10, "prompt_length": 10},
        train={"epochs": 3, "batch_size": 32},
    )
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    assert metrics["after_task1/acc"] > 50
    assert metrics["final/task_aware_acc"] > 50
