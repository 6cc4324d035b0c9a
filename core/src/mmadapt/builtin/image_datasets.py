"""Implementations of the builtin datasets: they read folder layouts and annotation files into splits.

Everything a dataset can check without decoding images is checked here, at construction, and each
error names the file and entry: paths escaping the root, labels out of range, conflicting class
names, empty training classes. Images are decoded only when loaded (see :mod:`mmadapt.data`).
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data import (
    IMAGE_EXTENSIONS,
    DataBundle,
    DatasetRoot,
    FileSplit,
    Task,
    check_label,
    list_images,
    prompt_name,
)
from ..errors import UserError, did_you_mean
from .config import CoopConfig, ImageFolderConfig, MultiLabelConfig

SPLITS = ("train", "val", "test")


# -- shared -----------------------------------------------------------------------------------------


def _annotation_file(root: DatasetRoot, value: str, key: str) -> Path:
    """A config-named annotation file: absolute, or relative to the dataset root."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else root.path / path
    if not path.is_file():
        raise UserError(f"{key}: file {path} not found")
    return path


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a valid JSON file ({exc})") from None


def _split(paths: list[Path], labels: list[Any], n_classes: int, config: Any, multi_label: bool = False) -> FileSplit:
    return FileSplit(paths, labels, n_classes, multi_label=multi_label, on_bad_image=config.on_bad_image)


# -- imagefolder ------------------------------------------------------------------------------------


def build_imagefolder(config: ImageFolderConfig) -> DataBundle:
    """Classes are the sorted folder names of ``root/train``; ``val/`` and ``test/`` may use a subset."""
    root = DatasetRoot(config.root)
    train_dir = root.path / "train"
    if not train_dir.is_dir():
        raise UserError(
            f"{train_dir}: folder not found; the imagefolder dataset expects root/train/<class>/<image> "
            "(and optionally root/val/ and root/test/ with the same class folders)"
        )
    classes = _class_folders(train_dir)
    if not classes:
        raise UserError(f"{train_dir}: no class folders; put each class's images in train/<class>/")
    unknown = sorted(set(config.classnames) - set(classes))
    if unknown:
        raise UserError(
            f"data.classnames: {', '.join(map(repr, unknown))} not a class folder of {train_dir}"
            f"{did_you_mean(unknown[0], classes)}"
        )
    splits = {
        name: _folder_split(root, root.path / name, classes, config, train=name == "train")
        for name in SPLITS
        if (root.path / name).is_dir()
    }
    task = Task(
        classnames=[config.classnames.get(c, prompt_name(c)) for c in classes],
        templates=list(config.templates),
        name=root.path.name,
    )
    return DataBundle(task, splits)


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _folder_split(
    root: DatasetRoot, folder: Path, classes: list[str], config: ImageFolderConfig, train: bool
) -> FileSplit:
    extra = sorted(set(_class_folders(folder)) - set(classes))
    if extra:
        raise UserError(
            f"{folder}: class folder(s) {', '.join(extra)} have no folder in {root.path / 'train'}; "
            "every class needs training images, so add them there or remove these folders"
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        images = list_images(folder / name)
        if train and not images:
            raise UserError(
                f"{folder / name}: class folder has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                "add training images or remove the folder"
            )
        paths += [root.resolve(path.relative_to(root.path), where=str(path)) for path in images]
        labels += [label] * len(images)
    return _split(paths, labels, len(classes), config)


# -- coop -------------------------------------------------------------------------------------------


def build_coop(config: CoopConfig) -> DataBundle:
    """Read CoOp's split JSON. Class ``k`` is named by its triples; labels must run 0..n-1."""
    root = DatasetRoot(config.root)
    split_file = _annotation_file(root, config.split_file, "data.split_file")
    data = _read_json(split_file)
    if not isinstance(data, dict) or not {"train", "test"} <= set(data):
        raise UserError(f"{split_file}: a CoOp split file is a JSON object with 'train', 'val' and 'test' lists")
    entries = {name: _coop_entries(data[name], f"{split_file}: {name}") for name in SPLITS if name in data}
    names = _coop_classnames(entries)
    splits = {}
    for split_name, triples in entries.items():
        paths, labels = [], []
        for where, (path, label, _) in triples:
            labels.append(check_label(label, len(names), where))
            paths.append(root.resolve(path, where))
        splits[split_name] = _split(paths, labels, len(names), config)
    task_name = split_file.stem.removeprefix("split_zhou_")
    classnames = [prompt_name(names[k]) for k in range(len(names))]
    return DataBundle(Task(classnames=classnames, templates=list(config.templates), name=task_name), splits)


def _coop_entries(items: Any, where: str) -> list[tuple[str, tuple[str, int, str]]]:
    """``(where, (path, label, classname))`` per triple, with the types checked."""
    if not isinstance(items, list):
        raise UserError(f"{where}: expected a list of [relative_path, label, classname] triples")
    parsed = []
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], int)
            and not isinstance(item[1], bool)
            and isinstance(item[2], str)
        ):
            raise UserError(f"{here}: expected [relative_path, integer label, classname]; got {item!r}")
        parsed.append((here, (item[0], item[1], item[2])))
    return parsed


def _coop_classnames(entries: dict[str, list[tuple[str, tuple[str, int, str]]]]) -> dict[int, str]:
    """Label -> class name over every split; one label with two names is an error."""
    names: dict[int, str] = {}
    for triples in entries.values():
        for where, (_, label, classname) in triples:
            known = names.setdefault(label, classname)
            if known != classname:
                raise UserError(f"{where}: label {label} is named {classname!r} here but {known!r} earlier")
    return names


# -- multilabel -------------------------------------------------------------------------------------


#: One annotated image: (where, relative path, class names).
_Entry = tuple[str, str, list[str]]


def build_multilabel(config: MultiLabelConfig) -> DataBundle:
    """Multi-label splits from COCO JSON, CSV or VOC files; class ids are the sorted training class names."""
    root = DatasetRoot(config.root)
    files = {"train": config.train_file, "val": config.val_file, "test": config.test_file}
    read = {}
    for name, value in files.items():
        if value:
            read[name] = _read_annotations(_annotation_file(root, value, f"data.{name}_file"), root)
    train_entries, train_categories = read["train"]
    classes = sorted(
        train_categories if train_categories is not None else {c for _, _, cs in train_entries for c in cs}
    )
    if not classes:
        raise UserError(f"{config.train_file}: no classes; the training annotations name no category")
    index = {name: k for k, name in enumerate(classes)}
    splits = {}
    for name, (entries, _) in read.items():
        subfolder = Path(getattr(config, f"{name}_images"))
        paths, labels = [], []
        for where, path, names in entries:
            labels.append(sorted({_class_id(index, c, where) for c in names}))
            paths.append(root.resolve(subfolder / path, where))
        splits[name] = _split(paths, labels, len(classes), config, multi_label=True)
    task = Task(
        classnames=[prompt_name(c) for c in classes],
        kind="multi-label",
        templates=list(config.templates),
        name=root.path.name,
    )
    return DataBundle(task, splits)


def _class_id(index: dict[str, int], name: str, where: str) -> int:
    if name not in index:
        raise UserError(
            f"{where}: class {name!r} is not a class of the training annotations{did_you_mean(name, index)}; "
            f"classes: {', '.join(index)}"
        )
    return index[name]


def _read_annotations(path: Path, root: DatasetRoot) -> tuple[list[_Entry], list[str] | None]:
    """Entries of one annotation file, and its category names when the file lists them (COCO)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_coco(path)
    if suffix == ".csv":
        return _read_csv(path), None
    if suffix == ".txt":
        return _read_voc(path, root)
    raise UserError(
        f"{path}: unknown annotation format; use a COCO-style .json, a .csv with columns path,labels, or a "
        "VOC image set ImageSets/Main/<split>.txt"
    )


def _read_coco(path: Path) -> tuple[list[_Entry], list[str]]:
    """``images``/``annotations``/``categories``; images without annotations have no positives."""
    data = _read_json(path)
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), list) for k in ("images", "annotations", "categories")
    ):
        raise UserError(
            f"{path}: a COCO-style file is a JSON object with 'images', 'annotations' and 'categories' lists"
        )
    categories = _coco_ids(data["categories"], "name", f"{path}: categories")
    names = list(categories.values())
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"{path}: categories: name(s) {', '.join(duplicated)} used by more than one id")
    images = _coco_ids(data["images"], "file_name", f"{path}: images")
    positives: dict[Any, set[str]] = {image_id: set() for image_id in images}
    for k, annotation in enumerate(data["annotations"]):
        where = f"{path}: annotations[{k}]"
        if not isinstance(annotation, dict) or "image_id" not in annotation or "category_id" not in annotation:
            raise UserError(f"{where}: expected an object with 'image_id' and 'category_id'; got {annotation!r}")
        if annotation["image_id"] not in images:
            raise UserError(f"{where}: image_id {annotation['image_id']!r} is not in 'images'")
        if annotation["category_id"] not in categories:
            raise UserError(
                f"{where}: category_id {annotation['category_id']!r} is out of range: not an id in 'categories'"
            )
        positives[annotation["image_id"]].add(categories[annotation["category_id"]])
    entries = [
        (f"{path}: images[{k}]", file_name, sorted(positives[image_id]))
        for k, (image_id, file_name) in enumerate(images.items())
    ]
    return entries, names


def _coco_ids(items: Sequence[Any], value_key: str, where: str) -> dict[Any, str]:
    """``{id: item[value_key]}`` of a COCO list, with shapes and unique ids checked."""
    by_id: dict[Any, str] = {}
    for k, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get(value_key), str):
            raise UserError(f"{where}[{k}]: expected an object with 'id' and a string {value_key!r}; got {item!r}")
        if item["id"] in by_id:
            raise UserError(f"{where}[{k}]: id {item['id']!r} appears twice")
        by_id[item["id"]] = item[value_key]
    return by_id


def _read_csv(path: Path) -> list[_Entry]:
    """Columns ``path`` and ``labels`` (class names separated by ``;``, empty for none)."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "labels"} <= set(reader.fieldnames):
            raise UserError(
                f"{path}: expected a header with columns path,labels (labels: class names separated by ';'); "
                f"got {reader.fieldnames}"
            )
        entries = []
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            names = [name.strip() for name in (row["labels"] or "").split(";") if name.strip()]
            entries.append((where, row["path"] or "", names))
    return entries


def _read_voc(path: Path, root: DatasetRoot) -> tuple[list[_Entry], list[str]]:
    """A Pascal VOC image set: one image id per line, objects in ``root/Annotations/<id>.xml``.

    An image is positive for a class when it has an object of that class not marked
    ``<difficult>1</difficult>``; an image whose only objects of a class are difficult is not
    positive for it. The image is ``JPEGImages/<filename>`` (the XML's ``<filename>``, else ``<id>.jpg``).
    The categories are the class names of every object, difficult ones included (VOC2007: its 20 classes).
    """
    entries, categories = [], set()
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}: line {line_number}"
            if len(fields) != 1:
                raise UserError(
                    f"{where}: expected one image id per line (ImageSets/Main/<split>.txt); got {line.strip()!r}. "
                    "Per-class files such as <class>_<split>.txt are not image sets"
                )
            annotation = root.resolve(f"Annotations/{fields[0]}.xml", where)
            filename, positive, names = _read_voc_xml(annotation, where)
            categories |= names
            entries.append((str(annotation), f"JPEGImages/{filename or fields[0] + '.jpg'}", positive))
    return entries, sorted(categories)


def _read_voc_xml(path: Path, where: str) -> tuple[str | None, list[str], set[str]]:
    """Image file name, sorted classes with a non-difficult object, and every object's class, of one XML."""
    try:
        tree = ElementTree.parse(path)
    except FileNotFoundError:
        raise UserError(
            f"{where}: annotation {path} not found; VOC keeps one Annotations/<id>.xml per image id"
        ) from None
    except ElementTree.ParseError as exc:
        raise UserError(f"{path}: not a valid VOC annotation XML ({exc})") from None
    positive, names = set(), set()
    for k, obj in enumerate(tree.getroot().iter("object")):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise UserError(f"{path}: object {k} has no <name>")
        names.add(name)
        if (obj.findtext("difficult") or "0").strip() != "1":
            positive.add(name)
    filename = (tree.getroot().findtext("filename") or "").strip() or None
    return filename, sorted(positive), names
