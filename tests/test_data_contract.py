"""The data contract: Split views, unlabeled splits, collate, few-shot sampling, base/new, transforms."""

from __future__ import annotations

import collections
import json
import random
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmadapt.data import (
    BadImageError,
    DataBundle,
    PairedTransform,
    Split,
    Task,
    apply_few_shot,
    apply_indices,
    base_new_bundles,
    build_transforms,
    collate,
    sample_few_shot,
    sample_few_shot_splits,
    select_classes,
    split_base_new,
    split_transforms,
)
from mmadapt.errors import UserError
from PIL import Image
from torch.utils.data import DataLoader


class ColorSplit(Split):
    """A generated split, as a plugin (ShapesWorld) would write one: only ``_load`` is implemented."""

    def __init__(self, labels, n_classes, bad=(), **kwargs):
        super().__init__(labels, n_classes, **kwargs)
        self.bad = set(bad)

    def _load(self, i):
        if i in self.bad:
            raise BadImageError(f"item {i}: broken")
        return {"image": Image.new("RGB", (4, 4), (i, 0, 0))}


# -- Split ------------------------------------------------------------------------------------------


def test_getitem_gives_tensors_label_and_index():
    item = ColorSplit([2, 0], 3)[0]
    assert item["image"].shape == (3, 4, 4) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.long and int(item["label"]) == 2
    assert item["index"] == 0


def test_multi_label_items_are_multi_hot():
    split = ColorSplit([[0, 2], []], 3, multi_label=True)
    assert split[0]["label"].tolist() == [1.0, 0.0, 1.0]
    assert split[1]["label"].tolist() == [0.0, 0.0, 0.0]


def test_with_transform_is_a_copy():
    split = ColorSplit([0, 1], 2)
    resized = split.with_transform(lambda image: torch.zeros(1))
    assert resized[0]["image"].shape == (1,)
    assert split[0]["image"].shape == (3, 4, 4)


def test_subset_of_subset_loads_from_the_source_with_remapped_labels():
    split = ColorSplit([0, 1, 2, 1, 0], 3)
    view = split.subset([1, 2, 3], label_map={1: 0, 2: 1})
    assert view.labels == [0, 1, 0] and view.n_classes == 2
    inner = view.subset([2, 0])
    assert inner.labels == [0, 0]
    assert inner.source is split and inner.indices == [3, 1]
    assert inner.load(0)["image"].getpixel((0, 0)) == (3, 0, 0)


def test_subset_single_label_needs_every_label_mapped():
    with pytest.raises(ValueError, match="not in the label map"):
        ColorSplit([0, 1], 2).subset([0, 1], label_map={0: 0})


def test_select_classes_multi_label_keeps_images_with_any_selected_class():
    split = ColorSplit([[0], [1, 3], [2], [3]], 4, multi_label=True)
    chosen = split.select_classes([3, 1])
    assert chosen.labels == [[0, 1], [0]]  # class 3 -> 0, class 1 -> 1; item with only 0/2 dropped
    assert chosen.n_classes == 2


def test_select_classes_restricts_task_and_knowledge():
    task = Task(["a", "b", "c"], knowledge={"a": "A", "c": "C"})
    bundle = DataBundle(task, {"train": ColorSplit([0, 1, 2, 2], 3)})
    chosen = select_classes(bundle, [2, 1])
    assert chosen.task.classnames == ["c", "b"] and chosen.task.knowledge == {"c": "C"}
    assert chosen.splits["train"].labels == [1, 0, 0]


class PairSplit(Split):
    """Image-to-image items of one size per item: a horizontal ramp as input, its inverse as target."""

    def __init__(self, sizes, labels=None, **kwargs):
        super().__init__(labels or [None] * len(sizes), 0, **kwargs)
        self.sizes = sizes

    def _load(self, i):
        width, height = self.sizes[i]
        ramp = (torch.arange(width).repeat(height, 1) * 255 // max(width - 1, 1)).to(torch.uint8)
        image = Image.fromarray(ramp.numpy()).convert("RGB")
        return {"image": image, "target": Image.fromarray(255 - ramp.numpy()).convert("RGB")}


def test_unlabeled_items_have_no_label_and_class_views_refuse():
    split = PairSplit([(5, 3), (4, 4)])
    assert not split.labeled and ColorSplit([0], 1).labeled
    item = split[1]
    assert set(item) == {"image", "target", "index"} and item["image"].shape == (3, 4, 4)
    assert split.subset([1]).labels == [None] and not split.subset([1]).labeled
    with pytest.raises(UserError, match="needs labeled data"):
        split.select_classes([0])
    with pytest.raises(UserError, match=r"needs labeled data.*remove data\.shots"):
        apply_few_shot(DataBundle(Task([], kind="image-to-image"), {"train": split}), shots=1, seed=1)


def test_a_split_with_some_labels_missing_is_refused():
    with pytest.raises(ValueError, match="1 of 2 labels are None"):
        ColorSplit([0, None], 1)


# -- bad images and collate -------------------------------------------------------------------------


def test_error_mode_raises_and_skip_mode_names_the_item():
    assert ColorSplit([0, 1], 2, bad=[1], on_bad_image="skip")[1] == {"skipped_key": "ColorSplit[1]"}
    view = ColorSplit([0, 1, 0], 2, bad=[2], on_bad_image="skip").subset([2, 0])
    assert view[0] == {"skipped_key": "ColorSplit[2]"}  # named in the split that loads it, not the view
    with pytest.raises(BadImageError, match="item 1"):
        ColorSplit([0, 1], 2, bad=[1])[1]


def test_collate_counts_skipped_items_through_a_dataloader():
    split = ColorSplit([0, 1, 0, 1, 0], 2, bad=[1, 4], on_bad_image="skip")
    batches = list(DataLoader(split, batch_size=2, num_workers=0, collate_fn=collate))
    assert sum(batch["skipped"] for batch in batches) == 2
    images = [batch for batch in batches if "image" in batch]
    assert sum(len(batch["image"]) for batch in images) == 3
    assert torch.cat([batch["index"] for batch in images]).tolist() == [0, 2, 3]
    assert [batch["skipped_keys"] for batch in batches] == [["ColorSplit[1]"], [], ["ColorSplit[4]"]]
    assert batches[-1] == {"skipped": 1, "skipped_keys": ["ColorSplit[4]"]}  # nothing else when all are skipped
    assert collate([None, split[0]])["skipped"] == 1  # a dataset may also return None: counted, unnamed


def test_collate_keeps_images_of_different_sizes_as_lists_and_stacks_equal_ones():
    split = PairSplit([(131, 97), (80, 64), (80, 64)]).with_transform(PairedTransform())
    mixed = collate([split[0], split[1]])
    assert isinstance(mixed["image"], list) and isinstance(mixed["target"], list)
    assert [tuple(x.shape) for x in mixed["image"]] == [(3, 97, 131), (3, 64, 80)]
    assert mixed["index"].tolist() == [0, 1] and "label" not in mixed
    same = collate([split[1], split[2]])
    assert same["image"].shape == (2, 3, 64, 80) and same["target"].shape == (2, 3, 64, 80)
    labeled = collate([ColorSplit([1, 0], 2)[i] for i in range(2)])
    assert labeled["image"].shape == (2, 3, 4, 4) and labeled["label"].tolist() == [1, 0]


def test_collate_of_only_skipped_items_has_no_index():
    split = ColorSplit([None, None], 0, bad=[0, 1], on_bad_image="skip")  # unlabeled, so no "label" either
    assert collate([split[0], split[1]]) == {"skipped": 2, "skipped_keys": ["ColorSplit[0]", "ColorSplit[1]"]}


# -- few-shot ---------------------------------------------------------------------------------------


def _dassl_reference(items, k, seed):
    """Dassl's generate_fewshot_dataset, written out with the seeded global ``random``."""
    state = random.getstate()
    try:
        random.seed(seed)
        output = []
        for shots, data_source in ((k, items["train"]), (min(k, 4), items["val"])):
            tracker = collections.defaultdict(list)
            for item in data_source:
                tracker[item[1]].append(item)
            dataset = []
            for group in tracker.values():
                dataset.extend(random.sample(group, shots) if len(group) >= shots else group)
            output.append(dataset)
        return output
    finally:
        random.setstate(state)


def _split_json():
    """Classes of 9, 7, 3 and 5 items; label 2 appears first, so groups are not in label order."""
    rng = random.Random(0)
    train = [[f"c{y}/{i}.jpg", y, f"class_{y}"] for y, n in ((0, 9), (1, 7), (2, 3), (3, 5)) for i in range(n)]
    rng.shuffle(train)
    train.insert(0, ["c2/first.jpg", 2, "class_2"])
    val = [[f"v{y}/{i}.jpg", y, f"class_{y}"] for y in (3, 1, 0, 2) for i in range(6)]
    return {"train": train, "val": val, "test": []}


class PathSplit(Split):
    def __init__(self, entries):
        super().__init__([e[1] for e in entries], 4)
        self.paths = [e[0] for e in entries]


def _bundle(data):
    return DataBundle(Task([f"class {y}" for y in range(4)]), {k: PathSplit(v) for k, v in data.items()})


@pytest.mark.parametrize(("shots", "seed"), [(5, 1), (4, 2), (16, 3), (1, 1)])
def test_few_shot_matches_dassl(shots, seed):
    data = _split_json()
    expected_train, expected_val = _dassl_reference(data, shots, seed)
    bundle, indices = apply_few_shot(_bundle(data), shots, seed)
    for name, expected in (("train", expected_train), ("val", expected_val)):
        view = bundle.splits[name]
        assert [view.source.paths[i] for i in view.indices] == [e[0] for e in expected]
        assert view.labels == [e[1] for e in expected]
    assert json.loads(json.dumps(indices)) == indices  # the run directory stores them as JSON


def test_few_shot_is_deterministic_and_keeps_small_classes_whole():
    labels = [0] * 9 + [1] * 2 + [2] * 5
    first = sample_few_shot(labels, 5, 7)
    assert first == sample_few_shot(labels, 5, 7)
    assert sample_few_shot(labels, 5, 8) != first
    counts = collections.Counter(labels[i] for i in first)
    assert counts == {0: 5, 1: 2, 2: 5}


def test_validation_gets_at_most_four_shots_from_the_continued_generator():
    labels = [y for y in range(3) for _ in range(10)]
    indices = sample_few_shot_splits(labels, labels, 8, seed=1)
    assert collections.Counter(labels[i] for i in indices["val"]) == {0: 4, 1: 4, 2: 4}
    # Validation continues training's generator, so it differs from sampling val on its own.
    assert indices["val"] != sample_few_shot(labels, 4, 1)
    two_shot_val = sample_few_shot_splits(labels, labels, 2, seed=1)["val"]
    assert collections.Counter(labels[i] for i in two_shot_val) == {0: 2, 1: 2, 2: 2}


def test_few_shot_refuses_multi_label_data():
    with pytest.raises(Exception, match="single-label"):
        sample_few_shot([[0, 1], [1]], 1, 0)


def test_apply_indices_reproduces_and_checks_stored_indices():
    bundle = _bundle(_split_json())
    sampled, indices = apply_few_shot(bundle, 2, 5)
    again = apply_indices(bundle, indices)
    assert again.splits["train"].indices == sampled.splits["train"].indices
    with pytest.raises(Exception, match="do not fit"):
        apply_indices(bundle, {"train": [10_000]})


# -- base / new -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "base", "new"), [(37, 19, 18), (47, 24, 23), (10, 5, 5), (397, 199, 198), (1000, 500, 500)]
)
def test_base_new_counts(n, base, new):
    base_ids, new_ids = split_base_new(n)
    assert (len(base_ids), len(new_ids)) == (base, new)
    assert base_ids + new_ids == list(range(n))


def test_base_new_uses_sorted_training_labels():
    assert split_base_new([4, 1, 1, 9, 7]) == ([1, 4], [7, 9])


def test_sampling_precedes_the_base_new_split():
    data = _split_json()
    bundle = _bundle(data)
    sampled, _ = apply_few_shot(bundle, 2, 1)
    base, new = base_new_bundles(sampled)
    assert base.task.classnames == ["class 0", "class 1"] and new.task.classnames == ["class 2", "class 3"]
    # The new-class training items are exactly the few-shot sample over all classes, relabelled ...
    full = sampled.splits["train"]
    expected = [full.source.paths[full.indices[i]] for i, y in enumerate(full.labels) if y in (2, 3)]
    new_train = new.splits["train"]
    assert sorted(new_train.source.paths[i] for i in new_train.indices) == sorted(expected)
    assert set(new_train.labels) == {0, 1}
    # ... which differs from splitting first: the generator is then at another state for these classes.
    split_first, _ = apply_few_shot(base_new_bundles(bundle)[1], 2, 1)
    other = split_first.splits["train"]
    assert sorted(other.source.paths[i] for i in other.indices) != sorted(expected)


# -- transforms -------------------------------------------------------------------------------------


def test_build_transforms_shapes_and_normalisation():
    pre = SimpleNamespace(size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    image = Image.new("RGB", (20, 12), (255, 255, 255))
    train, test = build_transforms(pre, "none")
    assert train is test
    assert test(image).shape == (3, 8, 8) and torch.allclose(test(image), torch.full((3, 8, 8), 2.0))
    train, test = build_transforms(pre, "crop-flip", normalize=False)
    assert train is not test and train(image).shape == (3, 8, 8)
    assert torch.allclose(test(image), torch.ones(3, 8, 8))


def test_classification_tasks_keep_the_backbone_transforms():
    pre = SimpleNamespace(size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    image = Image.new("RGB", (20, 12), (255, 255, 255))
    for kind in ("single-label", "multi-label"):
        train, test = split_transforms(Task(["a"], kind=kind), pre, "none")
        assert train is test and torch.equal(test(image), build_transforms(pre, "none")[1](image))


def test_image_to_image_gives_full_resolution_pixels_in_unit_range():
    pre = SimpleNamespace(size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    train, test = split_transforms(Task([], kind="image-to-image"), pre, "none")
    item = PairSplit([(131, 97)]).with_transform(test)[0]
    assert item["image"].shape == item["target"].shape == (3, 97, 131)
    assert item["image"].min() == 0.0 and item["image"].max() == 1.0  # not normalised
    torch.testing.assert_close(item["image"] + item["target"], torch.ones(3, 97, 131))
    assert torch.equal(train({"image": Image.new("RGB", (9, 7))})["image"], torch.zeros(3, 7, 9))


def test_image_to_image_augmentation_draws_one_geometry_per_item():
    train, test = split_transforms(Task([], kind="image-to-image"), None, "crop-flip")
    assert test.augment == "none"
    split = PairSplit([(131, 97)]).with_transform(train)
    torch.manual_seed(0)
    shapes, flips = set(), set()
    for _ in range(20):
        item = split[0]
        # The target is the input's inverse pixel for pixel only if both got the same crop and flip.
        torch.testing.assert_close(item["image"] + item["target"], torch.ones_like(item["image"]))
        height, width = item["image"].shape[1:]
        assert 0.5 * 97 - 1 <= height <= 97 and 0.5 * 131 - 1 <= width <= 131
        shapes.add((height, width))
        row = item["image"][0, 0]
        flips.add(bool(row[0] > row[-1]))
    assert len(shapes) > 1 and flips == {True, False}


def test_paired_augmentation_refuses_images_of_different_sizes():
    with pytest.raises(UserError, match="differ in size"):
        PairedTransform("crop-flip")({"image": Image.new("RGB", (4, 4)), "target": Image.new("RGB", (5, 4))})


def test_builtin_plugin_modules_do_not_import_torch():
    code = (
        "import sys, mmadapt.builtin.plugin;"
        "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
