"""The cifar100 and imagenet-r datasets: their distributed layouts read into splits, and one clear error
naming the expected layout when files are missing or malformed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from mmadapt.builtin.config import Cifar100Config, ImageNetRConfig
from mmadapt.builtin.standard_datasets import build_cifar100, build_imagenet_r
from mmadapt.errors import UserError
from PIL import Image

# -- cifar100 ---------------------------------------------------------------------------------------

NAMES = ["apple", "aquarium_fish", "baby"]


def _pickle(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(content, handle)


def _cifar(root, train_labels=(2, 0, 1, 0), test_labels=(1, 2)):
    folder = root / "cifar-100-python"
    _pickle(folder / "meta", {"fine_label_names": NAMES, "coarse_label_names": ["x"]})
    for name, labels in (("train", train_labels), ("test", test_labels)):
        data = np.zeros((len(labels), 3072), dtype=np.uint8)
        data[:, :1024] = 10 * np.arange(1, len(labels) + 1)[:, None]  # the red plane tells images apart
        data[:, 2048:] = 200  # blue
        _pickle(folder / name, {"data": data, "fine_labels": list(labels), "coarse_labels": [0] * len(labels)})
    return folder


def test_cifar100_reads_torchvisions_pickles(tmp_path):
    _cifar(tmp_path)
    bundle = build_cifar100(Cifar100Config(root=str(tmp_path)))
    assert bundle.task.classnames == ["apple", "aquarium fish", "baby"]
    assert bundle.task.kind == "single-label"
    train, test = bundle.split("train"), bundle.split("test")
    assert train.labels == [2, 0, 1, 0] and test.labels == [1, 2]
    image = train.load(2)["image"]
    assert image.size == (32, 32) and image.getpixel((5, 7)) == (30, 0, 200)
    assert train.item_key(1) == "cifar-100-python/train[1]"
    assert build_cifar100(Cifar100Config(root=str(tmp_path / "cifar-100-python"))).split("test").labels == [1, 2]


def test_cifar100_without_its_files_names_the_layout(tmp_path):
    folder = _cifar(tmp_path)
    (folder / "test").unlink()
    with pytest.raises(UserError, match=r"has no test file\(s\); the cifar100 dataset reads torchvision's layout"):
        build_cifar100(Cifar100Config(root=str(tmp_path)))
    with pytest.raises(UserError, match="data.root: dataset folder .* not found"):
        build_cifar100(Cifar100Config(root=str(tmp_path / "nowhere")))


def test_cifar100_refuses_a_file_that_is_not_its_pickle(tmp_path):
    folder = _cifar(tmp_path)
    (folder / "train").write_bytes(b"not a pickle")
    with pytest.raises(UserError, match="train: not a CIFAR python pickle"):
        build_cifar100(Cifar100Config(root=str(tmp_path)))
    _cifar(tmp_path, train_labels=(0, 7))
    with pytest.raises(UserError, match=r"fine_labels\[1\]: label 7 is out of range"):
        build_cifar100(Cifar100Config(root=str(tmp_path)))


# -- imagenet-r -------------------------------------------------------------------------------------

WNIDS = {"n01443537": "goldfish", "n01833805": "hummingbird", "n02007558": "flamingo"}


def _imagenet_r(root, per_class=10):
    folder = root / "imagenet-r"
    for k, wnid in enumerate(sorted(WNIDS)):
        (folder / wnid).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (4, 4), (k, i, 0)).save(folder / wnid / f"art_{i}.jpg")
    readme = "ImageNet-R classes\n" + "".join(f"{wnid} {name}\n" for wnid, name in WNIDS.items())
    (folder / "README.txt").write_text(readme)
    return folder


def test_imagenet_r_splits_its_class_folders_by_a_seeded_draw(tmp_path):
    _imagenet_r(tmp_path)
    bundle = build_imagenet_r(ImageNetRConfig(root=str(tmp_path)))
    assert bundle.task.classnames == ["goldfish", "hummingbird", "flamingo"]  # in WordNet-id order
    train, test = bundle.split("train"), bundle.split("test")
    assert (len(train), len(test)) == (24, 6)
    assert set(train.paths).isdisjoint(test.paths) and len(set(train.paths) | set(test.paths)) == 30
    for split in (train, test):
        assert all(f"/{sorted(WNIDS)[label]}/" in path for path, label in zip(split.paths, split.labels))
    again = build_imagenet_r(ImageNetRConfig(root=str(tmp_path / "imagenet-r")))
    assert again.split("test").paths == test.paths
    other = build_imagenet_r(ImageNetRConfig(root=str(tmp_path), split_seed=1))
    assert other.split("test").paths != test.paths


def test_imagenet_r_reads_a_folder_already_split_and_names_classes_by_folder_without_readme(tmp_path):
    for split, count in (("train", 3), ("test", 1)):
        for wnid in ("n01443537", "n01833805"):
            (tmp_path / split / wnid).mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (4, 4)).save(tmp_path / split / wnid / f"{i}.png")
    bundle = build_imagenet_r(ImageNetRConfig(root=str(tmp_path)))
    assert bundle.task.classnames == ["n01443537", "n01833805"]
    assert bundle.split("train").labels == [0, 0, 0, 1, 1, 1] and bundle.split("test").labels == [0, 1]


def test_imagenet_r_without_class_folders_names_the_layout(tmp_path):
    with pytest.raises(UserError, match=r"has no class folders; the imagenet-r dataset reads root/<wnid>/<image>"):
        build_imagenet_r(ImageNetRConfig(root=str(tmp_path)))
    (tmp_path / "n01443537").mkdir()
    with pytest.raises(UserError, match="n01443537: no images"):
        build_imagenet_r(ImageNetRConfig(root=str(tmp_path)))
    with pytest.raises(ValueError, match="data.test_fraction"):
        ImageNetRConfig(root=str(tmp_path), test_fraction=1.0)
