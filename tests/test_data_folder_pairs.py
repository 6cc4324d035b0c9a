"""The enhancement datasets: paired-folders (matched by stem, unlabeled) and unpaired-folders (labelled by folder)."""

from __future__ import annotations

import pytest
import torch
from mmadapt.builtin import folder_pairs as datasets
from mmadapt.builtin.config import PairedFoldersConfig, UnpairedFoldersConfig
from mmadapt.data import BadImageError, collate
from mmadapt.errors import UserError
from PIL import Image


def _image(path, size=(6, 4), color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


# -- paired-folders ---------------------------------------------------------------------------------


def _pairs(root, split="train", names=("a", "b"), input_folder="input", target_folder="target"):
    for k, name in enumerate(names):
        _image(root / split / input_folder / f"{name}.png", size=(6 + k, 4), color=(10, 10, 10))
        _image(root / split / target_folder / f"{name}.jpg", size=(6 + k, 4), color=(250, 250, 250))
    return root


def test_paired_folders_match_by_stem_and_are_unlabeled(tmp_path):
    _pairs(tmp_path, "train", names=("b", "a"))
    _pairs(tmp_path, "test", names=("c",))
    bundle = datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path)))
    assert bundle.task.kind == "image-to-image" and bundle.task.classnames == []
    assert set(bundle.splits) == {"train", "test"}  # val/ does not exist, so no val split
    train = bundle.splits["train"]
    assert not train.labeled and len(train) == 2
    assert train.paths == [str(tmp_path / "train/input/a.png"), str(tmp_path / "train/input/b.png")]
    item = train[0]
    assert set(item) == {"image", "target", "index"}
    assert item["image"].shape == item["target"].shape == (3, 4, 7)  # "a" was written second, 7 wide
    assert float(item["image"].max()) < 0.1 and float(item["target"].min()) > 0.9


def test_paired_folders_names_and_root_itself(tmp_path):
    _pairs(tmp_path, "", names=("1",), input_folder="low", target_folder="high")
    config = PairedFoldersConfig(root=str(tmp_path), train=None, val=None, test="", input_folder="low",
                                 target_folder="high")
    bundle = datasets.build_paired_folders(config)
    assert set(bundle.splits) == {"test"} and bundle.splits["test"].targets == [str(tmp_path / "high/1.jpg")]


def test_paired_folders_list_every_unmatched_file(tmp_path):
    _pairs(tmp_path, names=("a",))
    _image(tmp_path / "train/input/only_input.png")
    _image(tmp_path / "train/target/sub/only_target.png")
    with pytest.raises(UserError) as info:
        datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path)))
    message = str(info.value)
    assert str(tmp_path / "train") in message and "2 image(s) without a partner" in message
    assert "input/only_input.png" in message and "target/sub/only_target.png" in message
    assert "add the missing partners or remove these files" in message


def test_paired_folders_layout_errors(tmp_path):
    with pytest.raises(UserError, match=r"has none of the split folders.*data\.test=''"):
        datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path)))
    _image(tmp_path / "train/input/a.png")
    with pytest.raises(UserError, match=r"data\.target_folder \(train split\): folder .*target not found"):
        datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path)))
    _image(tmp_path / "train/target/a.png")
    _image(tmp_path / "train/target/a.jpg")
    with pytest.raises(UserError, match=r"a\.(png|jpg) and a\.(png|jpg) have the same stem"):
        datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path)))


def test_paired_images_of_different_sizes_are_bad_pairs(tmp_path):
    _image(tmp_path / "train/input/a.png", size=(6, 4))
    _image(tmp_path / "train/target/a.png", size=(4, 6))
    _image(tmp_path / "train/input/b.png")
    _image(tmp_path / "train/target/b.png")
    split = datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path))).splits["train"]
    with pytest.raises(BadImageError, match=r"target is 4x6 but its input .*a\.png is 6x4"):
        split[0]
    skipping = datasets.build_paired_folders(PairedFoldersConfig(root=str(tmp_path), on_bad_image="skip"))
    batch = collate([skipping.splits["train"][i] for i in range(2)])
    assert batch["skipped_keys"] == [str(tmp_path / "train/input/a.png")] and batch["index"].tolist() == [1]


def test_paired_folders_refuse_few_shot_sampling(tmp_path):
    from mmadapt.data import apply_few_shot

    bundle = datasets.build_paired_folders(PairedFoldersConfig(root=str(_pairs(tmp_path))))
    with pytest.raises(UserError, match="needs labeled data"):
        apply_few_shot(bundle, shots=1, seed=1)


# -- unpaired-folders -------------------------------------------------------------------------------


def _unpaired(root):
    for split, folders in (("train", ("well-lit", "backlit")), ("test", ("backlit",))):
        for name in folders:
            for i in range(2):
                _image(root / split / name / f"{i}.png", size=(5 + i, 3))
    return root


def test_unpaired_folders_are_labelled_by_folder(tmp_path):
    bundle = datasets.build_unpaired_folders(UnpairedFoldersConfig(root=str(_unpaired(tmp_path))))
    assert bundle.task.kind == "image-to-image" and bundle.task.classnames == ["backlit", "well-lit"]
    assert bundle.task.templates == ["a {} photo."]
    assert bundle.splits["train"].labels == [0, 0, 1, 1] and bundle.splits["test"].labels == [0, 0]
    item = bundle.splits["train"][1]
    assert item["image"].shape == (3, 3, 6) and item["label"].dtype == torch.long and "target" not in item


def test_unpaired_folders_in_a_given_order(tmp_path):
    config = UnpairedFoldersConfig(root=str(_unpaired(tmp_path)), classes=["well-lit", "backlit"])
    bundle = datasets.build_unpaired_folders(config)
    assert bundle.task.classnames == ["well-lit", "backlit"] and bundle.splits["test"].labels == [1, 1]
    with pytest.raises(UserError, match=r"data\.classes: 'backlt' not a folder .*did you mean 'backlit'"):
        datasets.build_unpaired_folders(UnpairedFoldersConfig(root=str(tmp_path), classes=["backlt", "well-lit"]))


def test_unpaired_folders_need_two_classes(tmp_path):
    _image(tmp_path / "train/backlit/0.png")
    with pytest.raises(UserError, match="at least two class folders"):
        datasets.build_unpaired_folders(UnpairedFoldersConfig(root=str(tmp_path)))
