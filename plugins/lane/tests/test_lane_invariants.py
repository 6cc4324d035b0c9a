"""MULTI-LANE's invariants: old-class logits bit-identical after later tasks, zero gradients outside the
current task, warm start, no replay buffer, and the parameter counts of multi-lane.md at ViT-B/16 width."""

from __future__ import annotations

import pytest
import torch
from lane_testing import images, incremental_task, labels, make_adapter
from mmadapt_lane.objective import build_lane_bce


def train_task(adapter, index, pixels, targets, steps=3, weight_decay=0.0, lr=0.05):
    """Task ``index`` as the protocol runs it: start, a fresh Adam over every trainable parameter, end."""
    adapter.start_task(index)
    adapter.train()
    objective = build_lane_bce(None, adapter)
    optimizer = torch.optim.Adam([p for p in adapter.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss, _ = objective(adapter({"image": pixels}), {"label": targets})
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    adapter.end_task(index)
    adapter.eval()


def served_logits(adapter, pixels):
    with torch.no_grad():
        return adapter({"image": pixels})["logits"]


@pytest.mark.parametrize(
    "options",
    [{}, {"summary": "merge"}, {"summary": "full"}, {"drop_and_replace": False}],
    ids=["selectors", "merge", "full", "no-drop-and-replace"],
)
def test_old_class_logits_are_bit_identical_after_later_tasks(backbone, options):
    adapter = make_adapter(backbone, **options)
    pixels, targets = images(backbone), labels(adapter.task)
    history = []
    for index in range(adapter.num_tasks):
        train_task(adapter, index, pixels, targets)
        history.append(served_logits(adapter, pixels))
    blocks = adapter.class_blocks
    for later in range(1, len(history)):
        old = slice(0, blocks[later - 1].stop)
        assert torch.equal(history[later][:, old], history[later - 1][:, old]), f"after task {later + 1}"
        assert not torch.equal(
            history[later][:, blocks[later].start : blocks[later].stop],
            torch.zeros_like(history[later][:, blocks[later].start : blocks[later].stop]),
        )


def test_weight_decay_moves_old_lanes(backbone):
    """The control: the invariant needs zero weight decay, and the check above notices when it is broken."""
    adapter = make_adapter(backbone)
    pixels, targets = images(backbone), labels(adapter.task)
    train_task(adapter, 0, pixels, targets)
    before = served_logits(adapter, pixels)[:, :3]
    train_task(adapter, 1, pixels, targets, weight_decay=0.1)
    assert not torch.equal(served_logits(adapter, pixels)[:, :3], before)


def test_task_keys_leave_old_lanes_and_keys_untouched(backbone):
    adapter = make_adapter(backbone, inference="task")
    pixels, targets = images(backbone), labels(adapter.task)
    train_task(adapter, 0, pixels, targets)
    saved = {name: p.detach().clone() for name, p in adapter.named_parameters() if p.requires_grad}
    train_task(adapter, 1, pixels, targets)
    for name in ("selectors", "keys"):
        assert torch.equal(getattr(adapter, name)[0], saved[name][0]), name
        assert not torch.equal(getattr(adapter, name)[1], saved[name][1]), name
    assert torch.equal(adapter.prompts[:, :, 0], saved["prompts"][:, :, 0])


@pytest.mark.parametrize("current", [0, 2])
def test_only_the_current_task_gets_gradients(backbone, current):
    adapter = make_adapter(backbone, inference="task")
    pixels, targets = images(backbone), labels(adapter.task)
    adapter.start_task(current)
    adapter.train()
    loss, _ = build_lane_bce(None, adapter)(adapter({"image": pixels}), {"label": targets})
    loss.backward()
    block = adapter.class_blocks[current]
    others = [t for t in range(adapter.num_tasks) if t != current]
    rows = torch.ones(adapter.task.n_classes, dtype=torch.bool)
    rows[block.start : block.stop] = False
    assert torch.equal(adapter.selectors.grad[others], torch.zeros_like(adapter.selectors.grad[others]))
    assert torch.equal(adapter.prompts.grad[:, :, others], torch.zeros_like(adapter.prompts.grad[:, :, others]))
    assert torch.equal(adapter.keys.grad[others], torch.zeros_like(adapter.keys.grad[others]))
    assert torch.equal(adapter.head.weight.grad[rows], torch.zeros_like(adapter.head.weight.grad[rows]))
    assert torch.equal(adapter.head.bias.grad[rows], torch.zeros_like(adapter.head.bias.grad[rows]))
    for grad in (
        adapter.selectors.grad[current],
        adapter.prompts.grad[:, :, current],
        adapter.keys.grad[current],
        adapter.head.weight.grad[~rows],
        adapter.head.bias.grad[~rows],
    ):
        assert grad.abs().sum() > 0


def test_the_next_slot_starts_as_the_last_one(backbone):
    adapter = make_adapter(backbone, inference="task")
    pixels, targets = images(backbone), labels(adapter.task)
    train_task(adapter, 0, pixels, targets)
    fresh = adapter.selectors[1].detach().clone()
    adapter.start_task(1)
    assert not torch.equal(fresh, adapter.selectors[1])
    assert torch.equal(adapter.selectors[1], adapter.selectors[0])
    assert torch.equal(adapter.prompts[:, :, 1], adapter.prompts[:, :, 0])
    assert torch.equal(adapter.keys[1], adapter.keys[0])
    untouched = make_adapter(backbone, warm_start=False)
    before = untouched.selectors[1].detach().clone()
    untouched.start_task(1)
    assert torch.equal(untouched.selectors[1], before)


def test_nothing_but_parameters_is_saved(backbone):
    """No replay buffer: a checkpoint holds the lanes' slices and the head, nothing that stores images."""
    adapter = make_adapter(backbone, inference="task")
    assert set(adapter.trainable_state_dict()) == {"selectors", "prompts", "keys", "head.weight", "head.bias"}


@pytest.fixture(scope="module")
def vit_b16():
    """A randomly initialised ViT-B/16 (timm, no download)."""
    from mmadapt_lane.bench import random_vit

    return random_vit("vit_base_patch16_224")


@pytest.mark.parametrize(
    ("tasks", "classes", "tokens", "layers", "per_task", "slices", "head"),
    [
        (5, 20, 10, 5, 84_480, 422_400, 15_380),  # VOC
        (8, 80, 20, 5, 168_960, 1_351_680, 61_520),  # COCO B0-C10
        (10, 200, 20, 12, 384_000, 3_840_000, 153_800),  # ImageNet-R
        (10, 100, 20, 5, 168_960, 1_689_600, 76_900),  # CIFAR-100
    ],
)
def test_parameter_counts_at_vit_b16_width(vit_b16, tasks, classes, tokens, layers, per_task, slices, head):
    from mmadapt_lane.config import MultiLaneConfig
    from mmadapt_lane.multilane import MultiLane

    config = MultiLaneConfig(num_selectors=tokens, prompt_length=tokens, prompt_layers=layers)
    task = incremental_task([classes // tasks] * tasks)
    counts = MultiLane(config, vit_b16, task).parameter_counts()
    assert (counts["per_task"], counts["head"]) == (per_task, head)
    assert counts["trainable"] == slices + head


def test_a_plain_task_is_one_lane_of_every_class(backbone):
    from mmadapt import Task

    adapter = make_adapter(backbone, Task(["a", "b", "c"], kind="multi-label"))
    assert adapter.num_tasks == 1 and list(adapter.class_blocks[0]) == [0, 1, 2]
    assert served_logits(adapter.eval(), images(backbone)).shape == (6, 3)
    assert incremental_task().blocks == [range(0, 3), range(3, 5), range(5, 7), range(7, 8)]
