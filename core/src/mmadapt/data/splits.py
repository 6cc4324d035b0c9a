"""A dataset's splits: items whose labels are known without decoding an image, and cheap views of them."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import check_choice
from ..errors import UserError
from .collate import SKIPPED_KEY
from .images import BadImageError, open_image, to_tensor
from .transforms import PairedTransform, Transform

Label = int | list[int]


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
                return {SKIPPED_KEY: self.item_key(i)}  # dropped, counted and named by collate()
            raise
        images = {key: value for key, value in item.items() if isinstance(value, Image.Image)}
        transform = self.transform or to_tensor
        if isinstance(transform, PairedTransform):
            item.update(transform(images))
        else:
            item.update({key: transform(image) for key, image in images.items()})
        if self.labels[i] is not None:
            item["label"] = self.label_tensor(self.labels[i])
        item["index"] = i
        return item

    def item_key(self, i: int) -> str:
        """Item ``i``'s name, the same in every view, process and order of the data: its file's path if it has one."""
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
