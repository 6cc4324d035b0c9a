"""The mmadapt side of ShapesWorld: the `shapes` dataset and the `shapes-clip` backbone registration."""

from __future__ import annotations

import numpy as np
import pytest
from mmadapt import UserError, get_plugin_manager
from mmadapt.testing import check_recipe


@pytest.fixture(scope="module")
def manager():
    return get_plugin_manager()


def build(manager, **options):
    component = manager.registry.get("dataset", "shapes")
    return component.build(component.config(**options))


def test_registered_with_plugin_and_version(manager):
    for kind, name in (("dataset", "shapes"), ("backbone", "shapes-clip"), ("command", "shapes")):
        component = manager.registry.get(kind, name)
        assert component.distribution == "mmadapt-shapes" and component.version


def test_labels_are_known_without_rendering_and_match_items(manager):
    bundle = build(manager, task="shape", train_size=20, test_size=10)
    assert set(bundle.splits) == {"train", "test"}
    train = bundle.splits["train"]
    assert len(train) == 20 and bundle.task.kind == "single-label"
    for i in range(5):
        item = train[i]
        assert item["image"].shape == (3, 64, 64)
        assert int(item["label"]) == train.labels[i]


def test_colour_shape_lists_base_classes_first(manager):
    from mmadapt import base_new_bundles
    from mmadapt_shapes.tasks import get_task

    bundle = build(manager, task="colour-shape", train_size=50, test_size=50)
    base, new = base_new_bundles(bundle)
    task = get_task("colour-shape")
    assert base.task.classnames == list(task.base_classes)
    assert new.task.classnames == list(task.novel_classes)


def test_multilabel_and_paired_tasks(manager):
    multi = build(manager, task="multilabel", train_size=8, test_size=8)
    assert multi.task.kind == "multi-label"
    item = multi.splits["train"][0]
    assert item["label"].shape == (len(multi.task.classnames),)
    assert np.flatnonzero(item["label"].numpy()).tolist() == multi.splits["train"].labels[0]
    pairs = build(manager, task="backlit-pairs", train_size=4, test_size=4)
    pair = pairs.splits["train"][0]
    assert pairs.task.kind == "image-to-image" and pair["target"].shape == pair["image"].shape
    assert pair["image"].mean() != pair["target"].mean()


def test_unknown_task_is_a_recipe_error():
    recipe = {"backbone": {"name": "shapes-clip"}, "data": {"name": "shapes", "task": "shaep"},
              "adapter": {"name": "zeroshot"}}
    with pytest.raises(UserError, match="data.task must be one of"):
        check_recipe(recipe)
