"""Tensors as a split: cached frozen image features, or features a protocol computed and trains a stage on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .data import Split


class TensorSplit(Split):
    """Item ``i`` is ``{key: tensors[key][i]}`` with its label (when labeled) and ``"index": i``.

    Every tensor has one row per item. The engine serves cached frozen image features this way
    (``{"image_features": ...}``, the labels of the images they come from); a protocol trains a stage
    on features it computed with ``run.features`` (``TensorSplit({"features": f}, labels, 2)``).
    ``labels`` follow :class:`Split` (class ids, or sorted lists for ``multi_label``); None for an
    unlabeled split.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        labels: Sequence[Any] | None = None,
        n_classes: int = 0,
        *,
        multi_label: bool = False,
    ) -> None:
        lengths = {key: len(value) for key, value in tensors.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"TensorSplit needs one or more tensors with the same number of rows; got {lengths}")
        size = next(iter(lengths.values()))
        super().__init__(labels if labels is not None else [None] * size, n_classes, multi_label=multi_label)
        if len(self.labels) != size:
            raise ValueError(f"TensorSplit needs one label per row; got {len(self.labels)} labels for {size} rows")
        self.tensors = dict(tensors)

    def _load(self, i: int) -> dict[str, Any]:
        return {key: value[i] for key, value in self.tensors.items()}
