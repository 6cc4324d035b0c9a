"""The data contract: a task description, its splits, and the helpers every dataset shares.

A dataset plugin's factory returns a :class:`DataBundle`: a :class:`Task` (class names, kind, prompt
templates, optional per-class knowledge) and named :class:`Split` s (``train``, optional ``val``,
``test``). A split knows every label without decoding an image, so few-shot sampling
(:func:`sample_few_shot`), base/new splits (:func:`split_base_new`) and class-incremental tasks
(:func:`select_classes`) are cheap views that never touch pixels.

Bad input follows DESIGN.md section 7: paths that escape the dataset root and labels out of range
fail when the dataset is built (:class:`DatasetRoot`, :func:`check_label`); unreadable images fail
or are skipped and counted when loaded (``data.on_bad_image``), and :func:`collate` carries the count
out of DataLoader worker processes.

The task kind decides what pixels a split gives (:func:`split_transforms`): classification splits
get the backbone's resize, crop and normalisation; image-to-image splits give RGB in [0, 1] at full
resolution, with the same geometry for every image of an item (:class:`PairedTransform`), and the
model normalises in its graph. A split may be unlabeled (every label ``None``): its items have no
``"label"``.
"""

from __future__ import annotations

import copy
import math
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torch.utils.data.dataloader import default_collate

from ..config import check_choice
from ..errors import UserError

TASK_KINDS = ("single-label", "multi-label", "image-to-image")

#: File extensions (lower case) that image-folder datasets pick up; anything else is ignored.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})

#: Appended to every unreadable-image message, so the user learns both ways out.
BAD_IMAGE_FIX = "fix or remove the file, or set data.on_bad_image=skip to skip unreadable images and count them"

#: Validation keeps at most this many shots per class (Dassl: ``min(num_shots, 4)``).
VAL_MAX_SHOTS = 4

Label = int | list[int]
Transform = Callable[[Image.Image], Any]

#: What ``data.augment`` may be, per task kind (see :func:`split_transforms`).
AUGMENTS = ("none", "crop-flip")


class BadImageError(UserError):
    """An image that is missing or cannot be decoded. ``Split.__getitem__`` skips it in skip mode.

    The constructor takes only the message, so the exception survives the round trip out of a
    DataLoader worker process (PyTorch rebuilds it as ``type(exc)(message)``).
    """


# -- task and bundle --------------------------------------------------------------------------------


@dataclass
class Task:
    """What a dataset asks the model to do."""

    classnames: list[str]
    #: ``single-label``, ``multi-label`` or ``image-to-image``.
    kind: str = "single-label"
    #: Zero-shot prompt templates; ``{}`` is replaced by the class name.
    templates: list[str] = field(default_factory=lambda: ["a photo of a {}."])
    #: Optional description text per class name (knowledge-aware prompting).
    knowledge: dict[str, str] | None = None
    name: str = ""
    #: Optional keywords per described class, best first (``mmadapt.apply_knowledge`` ranks them).
    keywords: dict[str, list[str]] | None = None

    def __post_init__(self) -> None:
        check_choice("task", "kind", self.kind, TASK_KINDS)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classnames)

    @property
    def multi_label(self) -> bool:
        """Whether an image can have several positive classes."""
        return self.kind == "multi-label"


@dataclass
class DataBundle:
    """A task and its splits: ``train``, optional ``val``, ``test``."""

    task: Task
    splits: dict[str, Split]

    def split(self, name: str) -> Split:
        """The named split, or a ``UserError`` listing the splits this dataset has."""
        if name not in self.splits:
            raise UserError(
                f"dataset {self.task.name or '(unnamed)'} has no {name!r} split; it has: {', '.join(self.splits)}"
            )
        return self.splits[name]


# -- splits -----------------------------------------------------------------------------------------


class Split(Dataset):
    """One split of a dataset: items whose labels are known without decoding their images.

    Subclasses implement :meth:`_load` and nothing else; the base class adds the label, applies the
    transform, turns bad images into ``{"skipped_key": name}`` in skip mode, and provides views (:meth:`subset`,
    :meth:`with_transform`) that never copy or decode images.

    ``labels[i]`` is a class id for single-label data and a sorted list of positive class ids for
    multi-label data. An unlabeled split (paired images for enhancement, say) has ``None`` for every
    item, and ``n_classes`` 0 unless its task names classes; a split with some labels missing is an
    error. ``__getitem__`` returns ``{"image": tensor, "label": tensor, "index": i}`` (no ``"label"``
    when unlabeled) plus any further entries ``_load`` returns (a ``"target"`` image for
    image-to-image tasks). A per-image transform is applied to each PIL image of the item on its
    own; a :class:`PairedTransform` gets all of them at once, so one random draw serves ``image``
    and ``target``.
    """

    def __init__(
        self,
        labels: Sequence[Label | None],
        n_classes: int,
        *,
        multi_label: bool = False,
        on_bad_image: str = "error",
    ) -> None:
        check_choice("data", "on_bad_image", on_bad_image, ("error", "skip"))
        missing = sum(label is None for label in labels)
        if 0 < missing < len(labels):
            raise ValueError(
                f"{type(self).__name__}: {missing} of {len(labels)} labels are None; a split is labeled "
                "throughout or not at all (pass None for every item of an unlabeled split)"
            )
        self.labels: list[Label | None] = list(labels)
        self.n_classes = n_classes
        self.multi_label = multi_label
        self.on_bad_image = on_bad_image
        #: Applied to every PIL image of an item; ``None`` converts to a float tensor in [0, 1].
        self.transform: Transform | PairedTransform | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def labeled(self) -> bool:
        """Whether items carry labels; an empty split counts as labeled."""
        return not self.labels or self.labels[0] is not None

    def _load(self, i: int) -> dict[str, Any]:
        """Item ``i`` without its label: ``{"image": PIL RGB, ...}``; raise :class:`BadImageError`."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load(i)")

    def load(self, i: int) -> dict[str, Any]:
        """Item ``i`` as PIL images plus its label (if labeled); raises :class:`BadImageError` in either mode."""
        item = self._load(i)
        if self.labels[i] is not None:
            item["label"] = self.labels[i]
        return item

    def __getitem__(self, i: int) -> dict[str, Any]:
        try:
            item = self.load(i)
        except BadImageError:
            if self.on_bad_image == "skip":
                return {SKIPPED_KEY: self._item_key(i)}  # dropped, counted and named by collate()
            raise
        images = {key: value for key, value in item.items() if isinstance(value, Image.Image)}
        transform = self.transform or _to_tensor
        if isinstance(transform, PairedTransform):
            item.update(transform(images))
        else:
            item.update({key: transform(image) for key, image in images.items()})
        if self.labels[i] is not None:
            item["label"] = self.label_tensor(self.labels[i])
        item["index"] = i
        return item

    def _item_key(self, i: int) -> str:
        """A name of item ``i`` that is the same in every view of the data and in every process."""
        source, (index,) = self._source_indices([i])
        return source._own_key(index)

    def _own_key(self, index: int) -> str:
        # Splits that are not files name an item by its position; FileSplit names it by its path.
        return f"{type(self).__name__}[{index}]"

    def label_tensor(self, label: Label) -> torch.Tensor:
        """A long class id, or a float multi-hot vector of ``n_classes`` for multi-label data."""
        if not self.multi_label:
            return torch.tensor(label, dtype=torch.long)
        target = torch.zeros(self.n_classes, dtype=torch.float32)
        target[list(label)] = 1.0
        return target

    def with_transform(self, transform: Transform | None) -> Split:
        """A shallow copy that applies ``transform`` to every PIL image of an item (see :class:`PairedTransform`)."""
        view = copy.copy(self)
        view.transform = transform
        return view

    def subset(self, indices: Sequence[int], label_map: dict[int, int] | None = None) -> Split:
        """A view of the items at ``indices`` (in that order), labels remapped through ``label_map``.

        With a ``label_map`` the view has ``max(label_map.values()) + 1`` classes. A single-label item
        whose label is not in the map is an error (pick items first, as :meth:`select_classes` does);
        a multi-label item keeps only its mapped labels.
        """
        indices = [int(i) for i in indices]
        labels = [self.labels[i] for i in indices]
        n_classes = self.n_classes
        if label_map is not None:
            self._require_labels("selecting classes")
            labels = [_remap(label, label_map, self.multi_label) for label in labels]
            n_classes = max(label_map.values(), default=-1) + 1
        source, source_indices = self._source_indices(indices)
        view = _SubsetSplit(source, source_indices, labels, n_classes)
        view.transform = self.transform
        return view

    def select_classes(self, class_ids: Sequence[int]) -> Split:
        """The items of the given classes, relabelled ``class_ids[k] -> k``.

        Multi-label items are kept when they have at least one of the classes, with only those
        labels (MULTI-LANE's task rule).
        """
        self._require_labels("selecting classes")
        label_map = {int(c): k for k, c in enumerate(class_ids)}
        if self.multi_label:
            keep = [i for i, label in enumerate(self.labels) if any(c in label_map for c in label)]
        else:
            keep = [i for i, label in enumerate(self.labels) if label in label_map]
        return self.subset(keep, label_map)

    def _source_indices(self, indices: list[int]) -> tuple[Split, list[int]]:
        """The split that actually loads these items, and their indices in it."""
        return self, indices

    def _require_labels(self, what: str) -> None:
        if not self.labeled:
            raise UserError(
                f"{what} needs labeled data, but this split of {type(self).__name__} has no labels; "
                "use a protocol and metrics that need no classes (e.g. protocol: standard with psnr/ssim)"
            )


class _SubsetSplit(Split):
    """Some items of another split with their own labels; loading goes straight to the source."""

    def __init__(self, source: Split, indices: list[int], labels: list[Label | None], n_classes: int) -> None:
        super().__init__(labels, n_classes, multi_label=source.multi_label, on_bad_image=source.on_bad_image)
        self.source = source
        self.indices = indices

    def _load(self, i: int) -> dict[str, Any]:
        return self.source._load(self.indices[i])

    def _source_indices(self, indices: list[int]) -> tuple[Split, list[int]]:
        # A view of a view points at the original split, so loading never walks a chain of views.
        return self.source, [self.indices[i] for i in indices]


def _remap(label: Label, label_map: dict[int, int], multi_label: bool) -> Label:
    if multi_label:
        return sorted(label_map[c] for c in label if c in label_map)
    if label not in label_map:
        raise ValueError(f"label {label} is not in the label map; select the items of mapped classes first")
    return label_map[label]


class FileSplit(Split):
    """Items stored as image files, one path and label each.

    Paths must already be checked against the dataset root (:class:`DatasetRoot`); files are only
    opened when an item is loaded, so a missing file is a bad image, not a construction error.
    """

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[Label | None], n_classes: int, **kwargs: Any):
        if len(paths) != len(labels):
            raise ValueError(f"FileSplit needs one label per path; got {len(paths)} paths and {len(labels)} labels")
        super().__init__(labels, n_classes, **kwargs)
        self.paths = [str(p) for p in paths]

    def _load(self, i: int) -> dict[str, Any]:
        return {"image": open_image(self.paths[i])}

    def _own_key(self, index: int) -> str:
        return self.paths[index]


# -- batches ----------------------------------------------------------------------------------------


#: The only key of what a split returns for an unreadable item in skip mode: the item's name (its
#: file path, or its position in the split that loads it).
SKIPPED_KEY = "skipped_key"


def collate(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack items into a batch, dropping skipped bad images (``{SKIPPED_KEY: name}`` or ``None``).

    Each key is collated on its own with PyTorch's ``default_collate``, except a tensor whose shape
    differs between the items (image-to-image images of different sizes): it becomes a list of the
    items' tensors, one per item, in batch order. Equal shapes stack into one tensor as before, so
    adapters of image-to-image tasks accept ``batch["image"]`` as a (B, 3, H, W) tensor or a list of
    (3, H, W) tensors.

    The batch holds ``"skipped"``, the number of dropped items, and ``"skipped_keys"``, the names of
    those that carry one. Both travel with the batch, so they survive DataLoader worker processes;
    the engine counts each unreadable item once in the run summary, however often it is met. A batch
    whose items were all skipped holds only these two keys (no ``"index"``), and the engine must not
    feed it to the model. Unlabeled items give a batch without ``"label"``.
    """
    skipped = [item for item in items if item is None or SKIPPED_KEY in item]
    kept = [item for item in items if item is not None and SKIPPED_KEY not in item]
    batch = {key: _collate_values([item[key] for item in kept]) for key in kept[0]} if kept else {}
    batch["skipped"] = len(skipped)
    batch["skipped_keys"] = [item[SKIPPED_KEY] for item in skipped if item is not None]
    return batch


def _collate_values(values: list[Any]) -> Any:
    if all(isinstance(value, torch.Tensor) for value in values) and len({value.shape for value in values}) > 1:
        return values
    return default_collate(values)


# -- images -----------------------------------------------------------------------------------------

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def open_image(path: str | Path) -> Image.Image:
    """Decode an image file to 8-bit RGB; a missing or corrupt file raises :class:`BadImageError`.

    The whole file is decoded here, so a truncated JPEG fails now rather than inside a transform.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except FileNotFoundError:
        raise BadImageError(f"{path}: image file not found; {BAD_IMAGE_FIX}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # Pillow reports corrupt data with all of these, depending on the format plugin.
        raise BadImageError(f"{path}: cannot decode image ({exc}); {BAD_IMAGE_FIX}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    - 16-bit grey (``I;16*``, and ``I``, the mode older Pillows give 16-bit PNGs) is scaled by
      255/65535 and rounded, not clipped: 65535 -> 255, 32768 -> 128.
    - Transparency (an alpha band, or a palette/colour-key ``transparency`` entry) is composited over
      white: transparent pixels often hold arbitrary colours, and white is what a viewer shows.
    - Everything else (grey, palette, CMYK, YCbCr, 1-bit) goes through Pillow's own conversion.
    """
    if image.mode.startswith("I"):
        grey = np.asarray(image).astype(np.float64) * (255.0 / 65535.0)
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), mode="L")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """Default transform: a float (3, H, W) tensor in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)


class PairedTransform:
    """The image-to-image transform: every image of an item as a float (3, H, W) tensor in [0, 1].

    No resize and no normalisation: the model sees full-resolution pixels and normalises in its
    graph (``Backbone.prepare_pixels``). ``augment="crop-flip"`` draws one geometry per item and
    applies it to every image of the item (``image`` and ``target`` alike): a crop whose height and
    width are the same fraction, uniform in ``crop_scale``, of the image's, at a uniform position,
    then a horizontal flip with probability 1/2. Crops keep native pixels (no resampling), so a
    batch of them may mix sizes (see :func:`collate`). The images of one item must have one size.
    Draws use torch's global generator, which the engine seeds per epoch and DataLoader per worker.

    :meth:`Split.__getitem__` passes a ``PairedTransform`` (or a subclass overriding ``__call__``)
    the item's PIL images as one mapping, where other transforms get one image at a time.
    """

    def __init__(self, augment: str = "none", crop_scale: tuple[float, float] = (0.5, 1.0)) -> None:
        check_choice("data", "augment", augment, AUGMENTS)
        low, high = crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1; got {crop_scale}")
        self.augment = augment
        self.crop_scale = (float(low), float(high))

    def __call__(self, images: dict[str, Image.Image]) -> dict[str, torch.Tensor]:
        """``{name: tensor}`` for ``{name: PIL image}``, every image with the same crop and flip."""
        if self.augment == "crop-flip" and images:
            sizes = {name: image.size for name, image in images.items()}
            if len(set(sizes.values())) > 1:
                shown = ", ".join(f"{name} {w}x{h}" for name, (w, h) in sizes.items())
                raise UserError(f"the images of one image-to-image item differ in size ({shown}); "
                                "paired images must have the same width and height")
            images = self._crop_and_flip(images, *next(iter(sizes.values())))
        return {name: _to_tensor(image) for name, image in images.items()}

    def _crop_and_flip(self, images: dict[str, Image.Image], width: int, height: int) -> dict[str, Image.Image]:
        low, high = self.crop_scale
        scale = low + (high - low) * float(torch.rand(()))
        crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
        left = int(torch.randint(width - crop_w + 1, ()))
        top = int(torch.randint(height - crop_h + 1, ()))
        flip = bool(torch.rand(()) < 0.5)
        box = (left, top, left + crop_w, top + crop_h)
        cropped = {name: image.crop(box) for name, image in images.items()}
        if flip:
            cropped = {name: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for name, image in cropped.items()}
        return cropped


def split_transforms(
    task: Task, preprocessing: Any, augment: str = "none"
) -> tuple[Transform | PairedTransform, Transform | PairedTransform]:
    """``(train_transform, test_transform)`` of a task's splits; the task kind decides.

    Single- and multi-label tasks get :func:`build_transforms` (the backbone's resize, crop and
    normalisation; ``crop-flip`` adds a random resized crop and flip). Image-to-image tasks get a
    :class:`PairedTransform`: full-resolution pixels in [0, 1], and with ``crop-flip`` one random
    crop and flip shared by ``image`` and ``target``; the test transform never augments.
    """
    if task.kind == "image-to-image":
        return PairedTransform(augment), PairedTransform("none")
    return build_transforms(preprocessing, augment)


def build_transforms(
    preprocessing: Any, augment: str = "none", *, normalize: bool = True
) -> tuple[Transform, Transform]:
    """``(train_transform, test_transform)`` for a backbone's ``preprocessing`` (``size``, ``mean``, ``std``).

    Test (CoOp since October 2021): resize the shorter side to ``size / crop_pct`` with the model's
    interpolation (CLIP: bicubic, crop 1.0; timm models bring their own), centre crop ``size``, to
    tensor, normalise. Train with ``augment="crop-flip"``: RandomResizedCrop(size, scale
    0.08-1, bicubic) and a horizontal flip, then to tensor and normalise; ``augment="none"`` trains
    on the test transform. ``normalize=False`` leaves pixels in [0, 1] for models that normalise in
    their graph (``Backbone.encode_image(..., preprocess=True)``).
    """
    from torchvision import transforms as T

    check_choice("data", "augment", augment, AUGMENTS)
    size = int(preprocessing.size)
    interpolation = T.InterpolationMode(getattr(preprocessing, "interpolation", "bicubic"))
    resize = int(math.floor(size / getattr(preprocessing, "crop_pct", 1.0)))
    tail: list[Any] = [T.ToTensor()]
    if normalize:
        tail.append(T.Normalize(mean=list(preprocessing.mean), std=list(preprocessing.std)))
    test = T.Compose([T.Resize(resize, interpolation=interpolation), T.CenterCrop(size), *tail])
    if augment == "none":
        return test, test
    train = T.Compose(
        [T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=interpolation), T.RandomHorizontalFlip(), *tail]
    )
    return train, test


# -- building datasets safely -----------------------------------------------------------------------


class DatasetRoot:
    """A dataset's root folder, handing out paths of entries and refusing any that escape it.

    An entry must be a relative path without ``..``, and must not resolve outside the root through a
    symbolic link. Resolved parent folders are cached, so checking a million entries of a few
    thousand folders costs about one ``lstat`` per entry.
    """

    def __init__(self, root: str | Path, key: str = "data.root") -> None:
        self.path = Path(root).expanduser()
        if not self.path.is_dir():
            raise UserError(f"{key}: dataset folder {root} not found; set {key} to the folder holding the images")
        self.real = Path(os.path.realpath(self.path))
        self._real_dirs: dict[Path, Path] = {}

    def resolve(self, entry: str | Path, where: str) -> Path:
        """The path of ``entry`` under the root; ``where`` (file and entry) names it in the error."""
        relative = Path(entry)
        if relative.is_absolute() or ".." in relative.parts:
            raise UserError(
                f"{where}: path {str(entry)!r} escapes the dataset root {self.path}; "
                "entries must be relative paths inside the root, without '..'"
            )
        path = self.path / relative
        real = self._real_dir(path.parent) / path.name
        if path.is_symlink():
            real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.real):
            raise UserError(
                f"{where}: path {str(entry)!r} resolves to {real}, outside the dataset root {self.path} "
                "(through a symbolic link); copy the file into the root or link the whole dataset instead"
            )
        return path

    def _real_dir(self, folder: Path) -> Path:
        if folder not in self._real_dirs:
            self._real_dirs[folder] = Path(os.path.realpath(folder))
        return self._real_dirs[folder]


def check_label(label: Any, n_classes: int, where: str) -> int:
    """``label`` as a class id; a ``UserError`` naming ``where`` when it is not an int in range."""
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_classes:
        raise UserError(
            f"{where}: label {label!r} is out of range; labels must be integers 0..{n_classes - 1} "
            f"({n_classes} classes)"
        )
    return label


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted, hidden files skipped), by extension."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / name
            for name in sorted(filenames)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return found


def prompt_name(name: str) -> str:
    """A folder or file class name as prompts use it: underscores become spaces (CoOp)."""
    return name.replace("_", " ")


# -- few-shot sampling ------------------------------------------------------------------------------


def sample_few_shot(labels: Sequence[int], shots: int, rng: int | random.Random) -> list[int]:
    """Indices of a ``shots``-per-class sample, by Dassl's rule (``generate_fewshot_dataset``).

    Items are grouped by label in first-appearance order; each group with at least ``shots`` items
    gives ``rng.sample(group, shots)``, a smaller group is kept whole. The indices come back in that
    order (group by group, each in ``rng.sample`` order), so the selection equals Dassl's for the
    same split file and seed. ``rng`` is a seed (a fresh ``random.Random``) or a generator to
    continue, which is how validation follows training (:func:`sample_few_shot_splits`).
    """
    if shots < 1:
        raise ValueError(f"shots must be at least 1; got {shots}")
    rng = random.Random(rng) if isinstance(rng, int) else rng
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        if label is None:
            raise UserError("few-shot sampling (data.shots) needs labeled data, and this dataset has no labels; "
                            "remove data.shots")
        if not isinstance(label, int):
            raise UserError("few-shot sampling (data.shots) needs single-label data; remove data.shots")
        groups.setdefault(label, []).append(index)
    selected: list[int] = []
    for group in groups.values():
        # ">=" matters: a group of exactly `shots` items still draws from the generator, as in Dassl.
        selected += rng.sample(group, shots) if len(group) >= shots else group
    return selected


def sample_few_shot_splits(
    train_labels: Sequence[int], val_labels: Sequence[int] | None, shots: int, seed: int
) -> dict[str, list[int]]:
    """Dassl's few-shot train and validation indices: train first, then ``min(shots, 4)`` for val.

    One ``random.Random(seed)`` serves both, in that order, as Dassl's seeded global ``random`` does.
    """
    rng = random.Random(seed)
    indices = {"train": sample_few_shot(train_labels, shots, rng)}
    if val_labels is not None:
        indices["val"] = sample_few_shot(val_labels, min(shots, VAL_MAX_SHOTS), rng)
    return indices


def apply_few_shot(bundle: DataBundle, shots: int, seed: int) -> tuple[DataBundle, dict[str, list[int]]]:
    """Sample ``shots`` per class from train (and val) and return the reduced bundle and the indices.

    Save the indices with the run: :func:`apply_indices` rebuilds the same bundle from them, even where
    the dataset's item order is machine-dependent.
    """
    val = bundle.splits.get("val")
    indices = sample_few_shot_splits(bundle.split("train").labels, val.labels if val else None, shots, seed)
    return apply_indices(bundle, indices), indices


def apply_indices(bundle: DataBundle, indices: dict[str, Sequence[int]]) -> DataBundle:
    """The bundle with each named split reduced to the given item indices (e.g. saved few-shot ones)."""
    splits = dict(bundle.splits)
    for name, chosen in indices.items():
        split = bundle.split(name)
        bad = [i for i in chosen if not 0 <= int(i) < len(split)]
        if bad:
            raise UserError(
                f"stored indices for split {name!r} do not fit the dataset ({len(split)} items; e.g. {bad[0]}); "
                "the dataset changed since they were sampled"
            )
        splits[name] = split.subset(chosen)
    return replace(bundle, splits=splits)


# -- class subsets ----------------------------------------------------------------------------------


def split_base_new(labels: int | Iterable[int]) -> tuple[list[int], list[int]]:
    """CoOp's base/new classes: sorted labels, base = first ceil(n/2), new = the rest.

    ``labels`` is a class count or the training labels (CoOp takes the label set of the few-shot
    training split). Sample shots first, then split: the order CoOp uses.
    """
    classes = list(range(labels)) if isinstance(labels, int) else sorted(set(labels))
    middle = math.ceil(len(classes) / 2)
    return classes[:middle], classes[middle:]


def select_classes(bundle: DataBundle, class_ids: Sequence[int]) -> DataBundle:
    """The bundle restricted to ``class_ids``, relabelled ``class_ids[k] -> k`` in the task and every split."""
    task = bundle.task
    classnames = [task.classnames[c] for c in class_ids]
    knowledge = None
    if task.knowledge is not None:
        knowledge = {name: task.knowledge[name] for name in classnames if name in task.knowledge}
    keywords = None
    if task.keywords is not None:
        keywords = {name: task.keywords[name] for name in classnames if name in task.keywords}
    return DataBundle(
        task=replace(task, classnames=classnames, knowledge=knowledge, keywords=keywords),
        splits={name: split.select_classes(class_ids) for name, split in bundle.splits.items()},
    )


def base_new_bundles(bundle: DataBundle) -> tuple[DataBundle, DataBundle]:
    """Base-to-novel: the base-class and new-class bundles over the task's classes.

    CoOp splits the label set of its training split; for the standard datasets that is every class
    of the task, and splitting the task's classes stays right when a small split misses a class.
    """
    base, new = split_base_new(bundle.task.n_classes)
    return select_classes(bundle, base), select_classes(bundle, new)


__all__ = [
    "BAD_IMAGE_FIX",
    "IMAGE_EXTENSIONS",
    "BadImageError",
    "DataBundle",
    "DatasetRoot",
    "FileSplit",
    "PairedTransform",
    "Split",
    "Task",
    "apply_few_shot",
    "apply_indices",
    "base_new_bundles",
    "build_transforms",
    "check_label",
    "collate",
    "list_images",
    "open_image",
    "prompt_name",
    "sample_few_shot",
    "sample_few_shot_splits",
    "select_classes",
    "split_base_new",
    "split_transforms",
    "to_rgb",
]
