"""The builtin datasets: imagefolder, coop-split and multilabel (COCO, CSV, VOC), with their bad-input errors."""

from __future__ import annotations

import json
import os

import pytest
import torch
from mmadapt.builtin import image_datasets as datasets
from mmadapt.builtin.config import CoopConfig, ImageFolderConfig, MultiLabelConfig
from mmadapt.builtin.plugin import register_datasets
from mmadapt.data import collate
from mmadapt.errors import UserError
from PIL import Image
from torch.utils.data import DataLoader


def _image(path, color=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 6), color).save(path)
    return path


def _registered():
    found = {}
    register_datasets(register=lambda name, factory, config, summary: found.update({name: (factory, config)}))
    return found


def test_registration():
    found = _registered()
    assert set(found) == {
        "imagefolder", "coop-split", "multilabel", "paired-folders", "unpaired-folders", "cifar100", "imagenet-r"
    }
    assert found["coop-split"][1] is CoopConfig


# -- imagefolder ------------------------------------------------------------------------------------


def _folder(root):
    for split, classes in (("train", ("golden_retriever", "cat")), ("test", ("cat",))):
        for name in classes:
            for i in range(2):
                _image(root / split / name / f"{i}.png")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root


def test_imagefolder(tmp_path):
    bundle = datasets.build_imagefolder(ImageFolderConfig(root=str(_folder(tmp_path))))
    assert bundle.task.classnames == ["cat", "golden retriever"]  # sorted folders, "_" -> space
    assert bundle.task.kind == "single-label" and bundle.task.templates == ["a photo of a {}."]
    assert set(bundle.splits) == {"train", "test"}
    assert bundle.splits["train"].labels == [0, 0, 1, 1]
    assert bundle.splits["test"].labels == [0, 0]
    assert bundle.splits["train"][3]["image"].shape == (3, 6, 6)


def test_imagefolder_prompt_names(tmp_path):
    config = ImageFolderConfig(root=str(_folder(tmp_path)), classnames={"golden_retriever": "retriever"})
    assert datasets.build_imagefolder(config).task.classnames == ["cat", "retriever"]
    with pytest.raises(UserError, match="'dog' not a class folder"):
        datasets.build_imagefolder(ImageFolderConfig(root=str(tmp_path), classnames={"dog": "dog"}))


def test_imagefolder_empty_class_names_the_folder(tmp_path):
    _folder(tmp_path)
    (tmp_path / "train" / "zebra").mkdir()
    with pytest.raises(UserError) as info:
        datasets.build_imagefolder(ImageFolderConfig(root=str(tmp_path)))
    assert f"{tmp_path / 'train' / 'zebra'}: class folder has no images" in str(info.value)
    assert "add training images or remove the folder" in str(info.value)


def test_imagefolder_test_class_not_in_train(tmp_path):
    _folder(tmp_path)
    _image(tmp_path / "test" / "dog" / "0.png")
    with pytest.raises(UserError, match=r"test: class folder\(s\) dog have no folder in .*train"):
        datasets.build_imagefolder(ImageFolderConfig(root=str(tmp_path)))


def test_imagefolder_missing_root_and_train(tmp_path):
    with pytest.raises(UserError, match="data.root: dataset folder .* not found"):
        datasets.build_imagefolder(ImageFolderConfig(root=str(tmp_path / "absent")))
    with pytest.raises(UserError, match="train: folder not found"):
        datasets.build_imagefolder(ImageFolderConfig(root=str(tmp_path)))


def test_imagefolder_symlink_out_of_root(tmp_path):
    root = _folder(tmp_path / "data")
    outside = _image(tmp_path / "secret.png")
    os.symlink(outside, root / "train" / "cat" / "link.png")
    with pytest.raises(UserError, match=r"link\.png.*outside the dataset root"):
        datasets.build_imagefolder(ImageFolderConfig(root=str(root)))


# -- coop -------------------------------------------------------------------------------------------


def _coop(root, train=None, **extra):
    for name in ("a/0.jpg", "a/1.jpg", "b/0.jpg", "c/0.jpg"):
        _image(root / name)
    split = {
        "train": train or [["a/0.jpg", 0, "sea_lion"], ["b/0.jpg", 1, "cat"], ["a/1.jpg", 0, "sea_lion"]],
        "val": [["c/0.jpg", 2, "dog"]],
        "test": [["c/0.jpg", 2, "dog"], ["b/0.jpg", 1, "cat"]],
        **extra,
    }
    (root / "split_zhou_Toy.json").write_text(json.dumps(split))
    return CoopConfig(root=str(root), split_file="split_zhou_Toy.json")


def test_coop(tmp_path):
    bundle = datasets.build_coop(_coop(tmp_path))
    assert bundle.task.name == "Toy"
    assert bundle.task.classnames == ["sea lion", "cat", "dog"]
    assert {k: s.labels for k, s in bundle.splits.items()} == {"train": [0, 1, 0], "val": [2], "test": [2, 1]}
    assert bundle.splits["test"].paths[0] == str(tmp_path / "c/0.jpg")


def test_coop_absolute_split_file(tmp_path):
    config = _coop(tmp_path / "images")
    config.split_file = str(tmp_path / "images" / "split_zhou_Toy.json")
    assert datasets.build_coop(config).task.name == "Toy"


@pytest.mark.parametrize("entry", ["../x.jpg", "a/../../x.jpg", "/etc/passwd"])
def test_coop_path_escaping_root(tmp_path, entry):
    config = _coop(tmp_path, train=[["a/0.jpg", 0, "sea_lion"], [entry, 1, "cat"]])
    with pytest.raises(UserError) as info:
        datasets.build_coop(config)
    message = str(info.value)
    assert (
        "split_zhou_Toy.json: train[1]" in message and repr(entry) in message and "escapes the dataset root" in message
    )


def test_coop_symlink_escaping_root(tmp_path):
    root = tmp_path / "images"
    config = _coop(root)
    _image(tmp_path / "secret.jpg")
    os.symlink(tmp_path, root / "up")
    split = json.loads((root / "split_zhou_Toy.json").read_text())
    split["test"] += [["up/images/a/0.jpg", 0, "sea_lion"], ["up/secret.jpg", 0, "sea_lion"]]
    (root / "split_zhou_Toy.json").write_text(json.dumps(split))
    with pytest.raises(UserError, match=r"test\[3\]: path 'up/secret.jpg' resolves to .* outside the dataset root"):
        datasets.build_coop(config)


@pytest.mark.parametrize("label", [-1, 5])
def test_coop_label_out_of_range(tmp_path, label):
    config = _coop(tmp_path, train=[["a/0.jpg", 0, "x"], ["b/0.jpg", label, "y"]])
    with pytest.raises(UserError, match=rf"split_zhou_Toy.json: train\[1\]: label {label} is out of range"):
        datasets.build_coop(config)


def test_coop_malformed_entries(tmp_path):
    with pytest.raises(UserError, match=r"train\[0\]: expected \[relative_path, integer label, classname\]"):
        datasets.build_coop(_coop(tmp_path, train=[["a/0.jpg", "0", "x"]]))
    with pytest.raises(UserError, match=r"val\[0\]: label 2 is named 'dog' here but 'cow' earlier"):
        datasets.build_coop(_coop(tmp_path, train=[["a/0.jpg", 0, "x"], ["a/1.jpg", 1, "y"], ["c/0.jpg", 2, "cow"]]))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UserError, match="broken.json: not a valid JSON file"):
        datasets.build_coop(CoopConfig(root=str(tmp_path), split_file="broken.json"))
    with pytest.raises(UserError, match="data.split_file: file .*absent.json not found"):
        datasets.build_coop(CoopConfig(root=str(tmp_path), split_file="absent.json"))


def test_skip_mode_counts_bad_images_through_a_dataloader(tmp_path):
    config = _coop(tmp_path)
    config.on_bad_image = "skip"
    data = (tmp_path / "a/1.jpg").read_bytes()
    (tmp_path / "a/1.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (tmp_path / "b/0.jpg").unlink()  # missing
    train = datasets.build_coop(config).splits["train"]
    batches = list(DataLoader(train, batch_size=2, num_workers=0, collate_fn=collate))
    assert sum(batch["skipped"] for batch in batches) == 2
    assert torch.cat([b["label"] for b in batches if "label" in b]).tolist() == [0]


def test_error_mode_names_the_bad_file_and_the_fix(tmp_path):
    config = _coop(tmp_path)
    (tmp_path / "b/0.jpg").unlink()
    train = datasets.build_coop(config).splits["train"]
    with pytest.raises(UserError, match=r"b/0\.jpg: image file not found.*data\.on_bad_image=skip"):
        list(DataLoader(train, batch_size=2, num_workers=0, collate_fn=collate))


# -- multilabel -------------------------------------------------------------------------------------


def _coco(root, name, annotations, categories=None, images=None):
    data = {
        "images": images
        or [{"id": 10, "file_name": "x.jpg"}, {"id": 11, "file_name": "y.jpg"}, {"id": 12, "file_name": "z.jpg"}],
        "annotations": [{"image_id": i, "category_id": c} for i, c in annotations],
        "categories": categories or [{"id": 1, "name": "zebra"}, {"id": 2, "name": "apple"}, {"id": 7, "name": "dog"}],
    }
    (root / name).write_text(json.dumps(data))
    return name


def test_multilabel_coco(tmp_path):
    for split in ("train", "test"):
        for name in "xyz":
            _image(tmp_path / split / f"{name}.jpg")
    train = _coco(tmp_path, "train.json", [(10, 1), (10, 2), (10, 1), (11, 7)])
    test = _coco(tmp_path, "test.json", [(12, 2)])
    config = MultiLabelConfig(
        root=str(tmp_path), train_file=train, test_file=test, train_images="train", test_images="test"
    )
    bundle = datasets.build_multilabel(config)
    assert bundle.task.kind == "multi-label"
    assert bundle.task.classnames == ["apple", "dog", "zebra"]  # ids follow the sorted names
    assert bundle.splits["train"].labels == [[0, 2], [1], []]
    assert bundle.splits["test"].labels == [[], [], [0]]
    assert bundle.splits["train"][0]["label"].tolist() == [1.0, 0.0, 1.0]
    assert bundle.splits["test"].paths[2] == str(tmp_path / "test" / "z.jpg")


def test_multilabel_coco_unknown_category(tmp_path):
    config = MultiLabelConfig(
        root=str(tmp_path), train_file=_coco(tmp_path, "t.json", [(10, 1), (11, 3)]), test_file="t.json"
    )
    with pytest.raises(UserError, match=r"t\.json: annotations\[1\]: category_id 3 is out of range"):
        datasets.build_multilabel(config)


def test_multilabel_coco_test_category_not_in_train(tmp_path):
    train = _coco(tmp_path, "train.json", [(10, 1)])
    test = _coco(tmp_path, "test.json", [(10, 4)], categories=[{"id": 4, "name": "zebras"}])
    with pytest.raises(
        UserError, match=r"test\.json: images\[0\]: class 'zebras' is not a class .*did you mean 'zebra'"
    ):
        datasets.build_multilabel(MultiLabelConfig(root=str(tmp_path), train_file=train, test_file=test))


def test_multilabel_csv(tmp_path):
    (tmp_path / "train.csv").write_text("path,labels\nimg/a.jpg,dog;cat\nimg/b.jpg,\nimg/c.jpg, cat \n")
    (tmp_path / "test.csv").write_text("path,labels\nimg/a.jpg,dog\n")
    bundle = datasets.build_multilabel(
        MultiLabelConfig(root=str(tmp_path), train_file="train.csv", test_file="test.csv")
    )
    assert bundle.task.classnames == ["cat", "dog"]
    assert bundle.splits["train"].labels == [[0, 1], [], [0]]
    assert bundle.splits["test"].labels == [[1]]


def test_multilabel_csv_errors(tmp_path):
    (tmp_path / "train.csv").write_text("path,labels\nimg/a.jpg,dog\n../b.jpg,dog\n")
    with pytest.raises(UserError, match=r"train\.csv: line 3: path '\.\./b\.jpg' escapes the dataset root"):
        datasets.build_multilabel(MultiLabelConfig(root=str(tmp_path), train_file="train.csv", test_file="train.csv"))
    (tmp_path / "test.csv").write_text("path,labels\nimg/a.jpg,dgo\n")
    (tmp_path / "train.csv").write_text("path,labels\nimg/a.jpg,dog\n")
    with pytest.raises(UserError, match=r"test\.csv: line 2: class 'dgo' .*did you mean 'dog'"):
        datasets.build_multilabel(MultiLabelConfig(root=str(tmp_path), train_file="train.csv", test_file="test.csv"))
    (tmp_path / "cols.csv").write_text("file,dog\nimg/a.jpg,1\n")
    with pytest.raises(UserError, match="cols.csv: expected a header with columns path,labels"):
        datasets.build_multilabel(MultiLabelConfig(root=str(tmp_path), train_file="cols.csv", test_file="cols.csv"))


# -- multilabel: Pascal VOC -------------------------------------------------------------------------


def _voc(root, images, image_sets):
    """A VOC2007-layout sample: ``images`` maps an id to its objects as ``(class, difficult)`` pairs."""
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for image_id, objects in images.items():
        _image(root / "JPEGImages" / f"{image_id}.jpg")
        xml = "".join(
            f"<object><name>{name}</name><pose>Left</pose><truncated>0</truncated><difficult>{int(hard)}</difficult>"
            "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object>"
            for name, hard in objects
        )
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>6</width><height>6</height><depth>3</depth></size>{xml}</annotation>"
        )
    for name, ids in image_sets.items():
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return MultiLabelConfig(root=str(root), train_file="ImageSets/Main/trainval.txt",
                            test_file="ImageSets/Main/test.txt")


def test_voc_difficult_objects_are_not_positive(tmp_path):
    config = _voc(tmp_path, {
        "000005": [("chair", False), ("chair", True), ("sofa", True)],  # sofa only difficult: not positive
        "000007": [("car", False)],
        "000009": [("person", True), ("horse", False), ("person", False)],  # one easy person is enough
        "000001": [("dog", True)],
    }, {"trainval": ["000005", "000007", "000009"], "test": ["000001", "000007"]})
    bundle = datasets.build_multilabel(config)
    # Classes: every object's class in the training annotations, difficult ones too, alphabetical.
    assert bundle.task.classnames == ["car", "chair", "horse", "person", "sofa"]
    assert bundle.task.kind == "multi-label"
    assert bundle.splits["train"].labels == [[1], [0], [2, 3]]
    assert bundle.splits["train"].paths[0] == str(tmp_path / "JPEGImages" / "000005.jpg")
    assert bundle.splits["train"][0]["label"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]


def test_voc_test_class_not_in_training_is_an_error(tmp_path):
    config = _voc(tmp_path, {"000005": [("chair", False)], "000001": [("dog", False)]},
                  {"trainval": ["000005"], "test": ["000001"]})
    with pytest.raises(UserError, match=r"000001\.xml: class 'dog' is not a class of the training annotations"):
        datasets.build_multilabel(config)


def test_voc_errors_name_the_file_and_line(tmp_path):
    config = _voc(tmp_path, {"000005": [("chair", False)]}, {"trainval": ["000005", "000404"], "test": ["000005"]})
    with pytest.raises(UserError, match=r"trainval\.txt: line 2: annotation .*000404\.xml not found"):
        datasets.build_multilabel(config)
    (tmp_path / "ImageSets/Main/trainval.txt").write_text("000005 1\n")
    with pytest.raises(UserError, match=r"line 1: expected one image id per line"):
        datasets.build_multilabel(config)
    (tmp_path / "ImageSets/Main/trainval.txt").write_text("000005\n")
    (tmp_path / "Annotations/000005.xml").write_text("<annotation><object>")
    with pytest.raises(UserError, match=r"000005\.xml: not a valid VOC annotation XML"):
        datasets.build_multilabel(config)
    (tmp_path / "ImageSets/Main/trainval.txt").write_text("../../outside\n")
    with pytest.raises(UserError, match="escapes the dataset root"):
        datasets.build_multilabel(config)


def test_bad_image_error_survives_a_worker_process(tmp_path):
    config = _coop(tmp_path)
    (tmp_path / "b/0.jpg").unlink()
    train = datasets.build_coop(config).splits["train"]
    with pytest.raises(UserError, match=r"b/0\.jpg: image file not found"):
        list(DataLoader(train, batch_size=3, num_workers=1, collate_fn=collate))
