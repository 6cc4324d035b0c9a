"""Frozen image features computed once per split and served in place of its images."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch

from .adapter import encode_batch_images
from .errors import UserError
from .passes import sharded_pass, to_device
from .tensor_split import TensorSplit

if TYPE_CHECKING:
    from .adapter import Adapter
    from .data import Split
    from .run_context import RunContext


class FeatureCache:
    """The image features of every split an adapter with ``frozen_image_features`` met, with the test transform.

    Keys are the split objects, held weakly: a split that is gone takes its entry along.
    """

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self._features: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def serve(self, adapter: Adapter, source: Split, name: str, augment: bool) -> Split:
        """``source`` with the train (augmenting) or test transform; its cached features when that is exact."""
        train_transform, test_transform = self.context.transforms
        dataset = source.with_transform(train_transform if augment else test_transform)
        if not adapter.frozen_image_features or augment:
            return dataset
        if source not in self._features:
            self._features[source] = self._encode(adapter, source, dataset, name)
        return self._features[source]

    def _encode(self, adapter: Adapter, source: Split, dataset: Split, name: str) -> TensorSplit:
        context, backbone, kind = self.context, adapter.backbone, adapter.task.kind

        def encode(batch: dict) -> dict[str, torch.Tensor]:
            images = to_device({"image": batch["image"]}, context.accelerator.device)["image"]
            with context.accelerator.autocast():
                features = encode_batch_images(backbone, images, kind).float()
            return {"image_features": features.cpu(), "index": batch["index"]}

        gathered = sharded_pass(context, dataset, encode, f"features {name}")
        if not gathered:
            raise UserError(f"split {name!r} has no readable image; check data.root and data.on_bad_image")
        # Unreadable images are left out, so the features keep the labels of the images they come from.
        kept = gathered["index"].tolist()
        labels = [source.labels[i] for i in kept]
        return TensorSplit({"image_features": gathered["image_features"]}, labels, source.n_classes,
                           multi_label=source.multi_label)
