"""Pixel transforms of a task's splits: the backbone's preprocessing, or full-resolution paired images."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from ..config import check_choice
from ..errors import UserError
from .images import to_tensor

if TYPE_CHECKING:
    from .task import Task

Transform = Callable[[Image.Image], Any]

#: What ``data.augment`` may be, per task kind (see :func:`split_transforms`).
AUGMENTS = ("none", "crop-flip")


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
        return {name: to_tensor(image) for name, image in images.items()}

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
