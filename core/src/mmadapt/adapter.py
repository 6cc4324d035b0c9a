"""The Adapter contract: the module that owns a method's trainable parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .backbone import Backbone
from .data import Task
from .errors import UserError


class Adapter(nn.Module):
    """Base class of adapters: built from (config, backbone, task), turns a batch into outputs.

    ``forward(batch)`` returns a dict with at least ``logits`` for classification (``features`` and
    ``images`` for other tasks). The backbone is a frozen submodule; everything trainable belongs to
    the adapter and is listed by :meth:`parameter_groups`, whose names recipes use for per-group
    learning rates (``train.param_groups.<name>.lr``).
    """

    #: True when ``forward`` sees images only through frozen, batch-independent image features
    #: (``batch["image_features"]``). The engine then computes them once per split when no augmentation
    #: is used: an exact speed-up.
    frozen_image_features: bool = False

    #: The method's paper, cited by the model card of an exported adapter (``adapt export``), e.g.
    #: ``"Zhou et al., Learning to Prompt for Vision-Language Models, IJCV 2022"``.
    paper: str = ""

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.task = task
        self._eval_cache: dict[str, Any] = {}

    # -- what the engine calls ------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups of trainable parameters; the default puts all of them in ``default``."""
        return {"default": [p for p in self.parameters() if p.requires_grad]}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable and total parameter counts (total includes the frozen backbone)."""
        params = {id(p): p for p in self.parameters()}.values()
        return {
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "total": sum(p.numel() for p in params),
        }

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint needs: trainable parameters and the adapter's own persistent buffers."""
        trainable = {name for name, p in self.named_parameters() if p.requires_grad}
        return {
            name: tensor.detach()
            for name, tensor in self.state_dict().items()
            if name in trainable or not name.startswith("backbone.")
        }

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load tensors saved by :meth:`trainable_state_dict`; every saved tensor must be used."""
        missing = [name for name in self.trainable_state_dict() if name not in state]
        unexpected = self.load_state_dict(state, strict=False).unexpected_keys
        if missing or unexpected:
            raise ValueError(f"checkpoint does not match the adapter: missing {missing}, unexpected {unexpected}")
        self.clear_eval_cache()

    def on_epoch_end(self, stage: str, epoch: int, epochs: int) -> None:
        """Called on every process after each training epoch of a stage, before its checkpoint; default: nothing.

        ``epoch`` counts from 1 to ``epochs``, the stage's length (an ``iterations`` stage counts its
        last, shortened epoch too). Runs without gradients, after the epoch's optimiser steps (and the
        schedule's step per epoch). What it changes in the adapter's parameters and persistent buffers
        is in the checkpoint written after the epoch, so a killed run resumes exactly: keep any state it
        needs across epochs in persistent buffers, which checkpoints hold like the trainable
        parameters (a weight average over epochs, such as PromptSRC's Gaussian prompt aggregation).
        The final epoch's changes are what the stage ends with and what evaluation sees.
        """

    def set_task(self, task: Task) -> None:
        """Switch to another class list (base-to-novel evaluation); adapters that can't must say so."""
        raise UserError(
            f"adapter {type(self).__name__} cannot evaluate on classes it was not trained on; "
            "use a protocol without new classes (standard) or an adapter that builds classes from text"
        )

    # -- what ``adapt export`` and ``mmadapt.load_adapter`` call --------------------------------------
    def exported_files(self) -> dict[str, list[str]]:
        """Files the adapter reads when it is built, by the key of its config that names them.

        ``adapt export`` copies them into the exported folder and ``load_adapter`` points the key at
        the copies, so an export needs nothing outside its folder. A key may name one path or a list;
        the default is none. Files of the data (a knowledge file) are not listed: the task carries
        what the adapter needs of them.
        """
        return {}

    @classmethod
    def task_from_export(cls, fields: dict[str, Any]) -> Task:
        """The task an exported adapter is rebuilt with, from the fields of the task it was trained with.

        ``fields`` are ``dataclasses.asdict`` of that task as saved in ``config.json``. The default
        builds a plain :class:`~mmadapt.Task` from the fields it has; an adapter built for a subclass
        of ``Task`` (task blocks, say) overrides this to rebuild it.
        """
        known = {field.name for field in dataclasses.fields(Task)}
        return Task(**{name: value for name, value in fields.items() if name in known})

    def merged_backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone's plain model weights with what this adapter trained folded into them.

        ``adapt export --merge`` writes them with :meth:`~mmadapt.Backbone.save_plain_weights`, to be
        loaded by the model's own library without mmadapt. Keys are the parameter names of the
        backbone's plain model (for an open_clip backbone, those of ``open_clip.create_model(arch)``).
        Only methods that change backbone weights have a merged form (LoRA, aTLAS); the default refuses.
        """
        raise UserError(
            f"adapter {type(self).__name__} has no merged form: it adds modules or prompts rather than changing "
            "backbone weights; export without --merge and load it with mmadapt.load_adapter"
        )

    # -- helpers for subclasses -----------------------------------------------------------------
    def image_features(self, batch: dict[str, Any], normalize: bool = True) -> torch.Tensor:
        """Frozen image features of a batch, from the engine's cache when it provided them.

        Image-to-image tasks give full-resolution pixels in [0, 1] (a tensor, or a list of images of
        different sizes); they are resized and normalised in the graph (``Backbone.prepare_pixels``).
        """
        features = batch.get("image_features")
        if features is None:
            with torch.no_grad():
                features = encode_batch_images(self.backbone, batch["image"], self.task.kind)
        return features / features.norm(dim=-1, keepdim=True) if normalize else features

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` without gradients, kept until the mode changes or weights are loaded.

        Only for values that no trainable parameter influences in the current mode.
        """
        if key not in self._eval_cache:
            with torch.no_grad():
                self._eval_cache[key] = compute()
        return self._eval_cache[key]

    def clear_eval_cache(self) -> None:
        """Forget every value kept by :meth:`cached`; call it when something they depend on changed."""
        self._eval_cache.clear()

    def cached_in_eval(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` with gradients while training, once per evaluation otherwise."""
        return compute() if self.training else self.cached(key, compute)

    def train(self, mode: bool = True) -> Adapter:
        """Switch mode and drop eval-time caches; the backbone keeps its frozen modules in eval mode."""
        super().train(mode)
        self.clear_eval_cache()
        return self


def encode_batch_images(backbone: Backbone, images: torch.Tensor | list[torch.Tensor], kind: str) -> torch.Tensor:
    """Image features of a batch's ``image`` as the task kind's data path gives it.

    Classification splits arrive preprocessed for the tower. Image-to-image splits arrive as pixels in
    [0, 1] at full resolution, stacked or as a list of differently sized images, and are prepared in
    the graph, one image at a time when sizes differ.
    """
    if kind != "image-to-image":
        return backbone.encode_image(images)
    if isinstance(images, list):
        return torch.cat([backbone.encode_image(image.unsqueeze(0), preprocess=True) for image in images])
    return backbone.encode_image(images, preprocess=True)
