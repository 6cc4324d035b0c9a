"""The Backbone: a frozen pretrained model as an image tower, an optional text tower and what they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError
from .towers import ImageTower, TextTower, TokenImageTower, TokenTextTower

#: Which backbones have a tower of each kind; named in capability errors.
_WHERE = {
    "text": "CLIP backbones have a text tower: openclip, shapes-clip",
    "token text": "open_clip's text transformer pooled at the end token serves: openclip ViT-B-16, RN50 and most "
    "CLIP archs, shapes-clip; not CoCa or Hugging Face text towers",
    "token image": "ViT image towers serve: openclip ViT-B-16 and other ViT archs, shapes-clip, timm",
}


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for the image tower."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Resampling the model was trained with for its test transform (``bicubic``, ``bilinear`` ...).
    interpolation: str = "bicubic"
    #: Fraction of the resized image the test transform keeps as centre crop (1.0 for CLIP).
    crop_pct: float = 1.0


class Backbone(nn.Module, ABC):
    """A frozen pretrained model: ``image`` (an :class:`~mmadapt.ImageTower`) and ``text`` (a
    :class:`~mmadapt.TextTower`, or None for image-only models), and what the model shares.

    What the model can do follows from its towers' types (``isinstance(backbone.image,
    TokenImageTower)``); adapters check what they need when they are built with the ``require_*``
    methods. All parameters are frozen on construction; adapters that train backbone weights (LoRA)
    re-enable what they own.
    """

    def __init__(
        self, image: ImageTower, text: TextTower | None, preprocessing: Preprocessing, embed_dim: int, name: str
    ) -> None:
        """Set the towers and model-wide facts; subclasses call this before registering their model and
        ``freeze_pretrained`` at the end of their ``__init__``."""
        super().__init__()
        #: The image tower.
        self.image = image
        #: The text tower, or None for an image-only model.
        self.text = text
        #: Input size and normalisation of the image tower.
        self.preprocessing = preprocessing
        #: Width of the joint image-text space (of the image feature for image-only models).
        self.embed_dim = embed_dim
        #: Shown in error messages, e.g. ``"openclip ViT-B-16"``.
        self.name = name

    @property
    @abstractmethod
    def logit_scale(self) -> torch.Tensor:
        """The model's (frozen) temperature, already exponentiated, as a scalar tensor; 100 for OpenAI CLIP."""

    def freeze_pretrained(self) -> None:
        """Freeze every current parameter and keep every current module in eval mode from now on.

        Subclasses call this at the end of ``__init__``. Modules added later (LoRA layers an adapter
        injects) are not affected and follow ``train()`` as usual.
        """
        self.requires_grad_(False)
        self.eval()
        # A plain tuple, so the modules are remembered without being registered a second time.
        self._pretrained_modules = tuple(m for m in self.modules() if m is not self)

    def train(self, mode: bool = True) -> Backbone:
        """Set the training mode, keeping the pretrained modules in eval mode.

        A frozen model must not change with the adapter's mode: batch-norm statistics would drift
        and patch dropout or stochastic depth would make features random.
        """
        super().train(mode)
        for module in getattr(self, "_pretrained_modules", ()):
            module.training = False
        return self

    def prepare_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Resize RGB pixels in [0, 1] of any size to the tower's input and normalise them, in the graph.

        Bilinear resize of the whole image to ``size x size`` (no crop, no antialiasing, as CLIP-LIT
        does), then ``(x - mean) / std``. Differentiable with respect to ``pixels``.
        """
        prep = self.preprocessing
        if pixels.shape[-2:] != (prep.size, prep.size):
            pixels = F.interpolate(pixels, size=(prep.size, prep.size), mode="bilinear", align_corners=False)
        mean = pixels.new_tensor(prep.mean).view(1, -1, 1, 1)
        std = pixels.new_tensor(prep.std).view(1, -1, 1, 1)
        return (pixels - mean) / std

    def encode_image(self, pixels: torch.Tensor, normalize: bool = False, preprocess: bool = False) -> torch.Tensor:
        """Image features ``(B, embed_dim)`` from the image tower; differentiable with respect to ``pixels``.

        With ``preprocess=True`` pixels are RGB in [0, 1] of any size and are resized and normalised
        inside the graph (``prepare_pixels``; image-enhancement methods need gradients through it).
        """
        features = self.image.encode(self.prepare_pixels(pixels) if preprocess else pixels)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Text features ``(n, embed_dim)`` of token ids from the text tower."""
        text = self.require_text_tower("encode_text needs a text tower", "encode images only")
        features = text.encode(token_ids)
        return F.normalize(features, dim=-1) if normalize else features

    def save_plain_weights(self, state: dict[str, torch.Tensor], folder: Path) -> str | None:
        """Write a plain model's weights (:meth:`Adapter.merged_backbone_state`) into ``folder`` in the
        format of the model's own library, so they load without mmadapt; return the Python code that
        loads them, with ``{folder}`` standing for the folder.

        Backbones whose library has such a format implement it (``openclip``: open_clip's
        ``local-dir:``/``hf-hub:`` layout); the default has none, writes nothing and returns None.
        """
        del state, folder  # no format to write them in
        return None

    def require_text_tower(self, needed_by: str, fix: str) -> TextTower:
        """The text tower, or a ``UserError`` "<needed_by>; backbone <name> has no text tower: <fix> (<who has>)".

        Adapters call the ``require_*`` methods first in ``__init__``, so a recipe pairing a method with
        a model that cannot serve it fails with the recipe key to change, not deep inside a forward.
        """
        if self.text is None:
            raise self._missing(needed_by, "has no text tower", "text", fix)
        return self.text

    def require_token_text_tower(self, needed_by: str, fix: str) -> TokenTextTower:
        """The text tower if it is a :class:`~mmadapt.TokenTextTower` (prompt embeddings in, layers reachable)."""
        text = self.require_text_tower(needed_by, fix)
        if not isinstance(text, TokenTextTower):
            has = f"has no token text tower (its text tower is a {type(text.module).__name__})"
            raise self._missing(needed_by, has, "token text", fix)
        return text

    def require_token_image_tower(self, needed_by: str, fix: str) -> TokenImageTower:
        """The image tower if it is a :class:`~mmadapt.TokenImageTower` (a ViT, layers reachable)."""
        if not isinstance(self.image, TokenImageTower):
            has = f"has no ViT image tower (its image tower is a {type(self.image.module).__name__})"
            raise self._missing(needed_by, has, "token image", fix)
        return self.image

    def _missing(self, needed_by: str, has: str, kind: str, fix: str) -> UserError:
        return UserError(f"{needed_by}; backbone {self.name} {has}: {fix} ({_WHERE[kind]})")
