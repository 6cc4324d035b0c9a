"""Loader workers hand over the same batches as the in-process loader, with only the images as tensors."""

from __future__ import annotations

import torch
from mmadapt.backbone import Preprocessing
from mmadapt.builtin.config import ImageFolderConfig
from mmadapt.builtin.data_bench import CLIP_MEAN, CLIP_STD, write_image_folder
from mmadapt.builtin.image_datasets import build_imagefolder
from mmadapt.data import build_transforms, collate
from mmadapt.passes import batch_loader
from mmadapt.sampling import SeededItems
from mmadapt.worker_batches import collate_in_worker, finish


def _augmented_split(root, on_bad_image="error"):
    train, _ = build_transforms(Preprocessing(32, CLIP_MEAN, CLIP_STD), "crop-flip")
    split = build_imagefolder(ImageFolderConfig(root=str(root), on_bad_image=on_bad_image)).split("train")
    # Seeded per item: the crops do not depend on which process reads an item.
    return SeededItems(split.with_transform(train), seed=7)


def _assert_same_batches(ours, reference):
    assert len(ours) == len(reference)
    for batch, expected in zip(ours, reference):
        assert list(batch) == list(expected)
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert batch[key].dtype == value.dtype and torch.equal(batch[key], value), key
            else:
                assert batch[key] == value, key


def test_two_workers_give_the_in_process_batches(tmp_path):
    dataset = _augmented_split(write_image_folder(tmp_path, images=14, side=48, classes=3))
    in_process = list(batch_loader(dataset, 4, shuffle=True, seed=3))
    with_workers = list(batch_loader(dataset, 4, shuffle=True, seed=3, workers=2))
    assert [b["index"].tolist() for b in in_process] == [b["index"].tolist() for b in with_workers]
    _assert_same_batches(with_workers, in_process)


def test_skipped_items_are_counted_alike_with_workers(tmp_path):
    root = write_image_folder(tmp_path, images=10, side=48, classes=2)
    broken = sorted((root / "train" / "class_1").iterdir())[0]
    broken.write_bytes(b"not a jpeg")
    dataset = _augmented_split(root, on_bad_image="skip")
    in_process = list(batch_loader(dataset, 4, shuffle=False))
    with_workers = list(batch_loader(dataset, 4, shuffle=False, workers=2))
    assert sum(b["skipped"] for b in with_workers) == 1 and [str(broken)] in [b["skipped_keys"] for b in with_workers]
    _assert_same_batches(with_workers, in_process)


def test_a_worker_returns_only_the_images_as_tensors(tmp_path):
    dataset = _augmented_split(write_image_folder(tmp_path, images=4, side=48, classes=2))
    items = [dataset[i] for i in range(4)] + [None]
    handed_over = collate_in_worker(items)
    assert [key for key, value in handed_over.items() if isinstance(value, torch.Tensor)] == ["image"]
    _assert_same_batches([finish(handed_over)], [collate(items)])
