"""``protocol: atlas-tta``: test-time adaptation without labels (aTLAS's FixMatch-style objective).

1. The untrained adapter (zero coefficients: the pre-trained model) predicts every item of the split;
   per predicted class the ``trusted_per_class`` most confident items form the trusted set, labelled
   with their zero-shot prediction.
2. One stage trains on the split's images, unlabelled, in two views: the weak one (the run's
   transform) and a strong one (random resized crop, scale 0.5-1, and RandAugment). A trusted item
   is trained towards its zero-shot label; any other item towards the weak view's prediction when
   that prediction's probability reaches ``threshold``. The loss is the cross-entropy of the strong
   view's logits, averaged over the batch (items with no target count as 0).
3. The split is evaluated with its labels.
"""

from __future__ import annotations

import typing
from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Protocol, Split


@typing.runtime_checkable
class StrongViewAdapter(typing.Protocol):
    """An adapter whose forward also scores ``batch["strong_image"]``, as ``outputs["strong_logits"]`` (atlas)."""

    scores_strong_views: bool


class TwoViewSplit(Split):
    """A split's images without labels, each with a strong view, its zero-shot label and whether it is trusted."""

    def __init__(self, source: Split, zeroshot: torch.Tensor, trusted: torch.Tensor, strong: Any) -> None:
        super().__init__([None] * len(source), source.n_classes, on_bad_image=source.on_bad_image)
        self.source, self.zeroshot, self.trusted, self.strong = source, zeroshot, trusted, strong

    def _load(self, i: int) -> dict[str, Any]:
        item = self.source.load(i)
        return {"image": item["image"], "strong_image": self.strong(item["image"]),
                "zeroshot_label": self.zeroshot[i], "trusted": self.trusted[i]}


def trusted_items(probabilities: torch.Tensor, per_class: int) -> torch.Tensor:
    """A bool mask: for each predicted class, its ``per_class`` items of highest probability."""
    confidence, predicted = probabilities.max(dim=-1)
    trusted = torch.zeros(len(predicted), dtype=torch.bool)
    for label in predicted.unique():
        members = (predicted == label).nonzero().flatten()
        ranked = members[confidence[members].argsort(descending=True, stable=True)]
        trusted[ranked[:per_class]] = True
    return trusted


def fixmatch_objective(threshold: float):
    """``(outputs, batch) -> (loss, terms)``: cross-entropy of the strong view towards trusted or confident labels."""

    def objective(outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict]:
        weak = outputs["logits"].detach().float().softmax(dim=-1)
        confidence, pseudo = weak.max(dim=-1)
        trusted = batch["trusted"].bool()
        target = torch.where(trusted, batch["zeroshot_label"].long(), pseudo)
        kept = trusted | (confidence >= threshold)
        per_item = F.cross_entropy(outputs["strong_logits"].float(), target, reduction="none")
        loss = (per_item * kept).sum() / len(kept)
        return loss, {"kept": kept.float().mean()}

    return objective


def strong_view(size: int, ops: int, magnitude: int):
    """The strong augmentation on a PIL image: random resized crop (scale 0.5-1) at its size, then RandAugment."""
    from torchvision import transforms as T

    return T.Compose([T.RandomResizedCrop(size, scale=(0.5, 1.0)), T.RandAugment(ops, magnitude)])


class TestTimeProtocol(Protocol):
    """Adapt on the evaluation split without its labels, then evaluate it (see the module docstring)."""

    adapter_interface = StrongViewAdapter

    def run(self, run) -> dict[str, float]:
        """Zero-shot predictions and trusted set (kept in ``run.state``), one unlabelled stage, the evaluation."""
        config = self.config
        initial = ({f"initial/{k}": v for k, v in self.evaluate(run).items()} if config.evaluate_initial else {})
        source = run.bundle.split(config.split)
        if "zeroshot_label" not in run.state:
            adapter = run.adapter
            found = run.features(source, lambda batch: {"probabilities": adapter(batch)["logits"].float().softmax(-1)},
                                 desc="zero-shot predictions")
            probabilities = torch.zeros(len(source), found["probabilities"].shape[-1])
            probabilities[found["index"]] = found["probabilities"]
            run.state["zeroshot_label"] = probabilities.argmax(dim=-1)
            run.state["trusted"] = trusted_items(probabilities, config.trusted_per_class).to(torch.uint8)
        size = _image_size(source)
        views = TwoViewSplit(source, run.state["zeroshot_label"], run.state["trusted"],
                             strong_view(size, config.strong_ops, config.strong_magnitude))
        run.fit(views, stage="tta", objective=fixmatch_objective(config.threshold))
        return {**initial, **self.evaluate(run)}

    def evaluate(self, run) -> dict[str, float]:
        """The split with the recipe's metrics."""
        return run.evaluate(self.config.split)


def _image_size(split: Split) -> int:
    """The shorter side of the split's first image: the strong view keeps the images' own size."""
    image = split.load(0)["image"]
    return min(image.size)
