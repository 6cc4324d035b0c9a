"""The Backbone contract: what adapters may rely on from a pretrained model, for any width or depth."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for the image tower."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class Backbone(nn.Module):
    """A frozen pretrained model and the operations methods need from it.

    Subclasses implement the image side always and the text side when the model has a text tower
    (``has_text`` is then True). Operations a model cannot support raise ``NotImplementedError`` with a
    message naming the backbone and the operation. All parameters are frozen on construction; adapters
    that train backbone weights (LoRA) re-enable what they own.
    """

    #: Whether the model has a text tower (CLIP) or is image-only (a timm ViT).
    has_text: bool = False

    # -- shared ---------------------------------------------------------------------------------
    @property
    def embed_dim(self) -> int:
        """Width of the joint image-text space (or of the image feature for image-only models)."""
        raise NotImplementedError

    @property
    def vision_width(self) -> int:
        """Width of the image tower's tokens."""
        raise NotImplementedError

    @property
    def preprocessing(self) -> Preprocessing:
        """Input size and normalisation of the image tower."""
        raise NotImplementedError

    @property
    def logit_scale(self) -> torch.Tensor:
        """The model's (frozen) temperature, already exponentiated; 100 for OpenAI CLIP."""
        raise NotImplementedError

    # -- text tower -----------------------------------------------------------------------------
    @property
    def text_width(self) -> int:
        """Width of the text tower's token embeddings."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    @property
    def context_length(self) -> int:
        """Number of positions of the text tower (77 for CLIP)."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Token ids (n, context_length) with start and end tokens and padding."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def eot_index(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Index of each sequence's end token, the position text features are pooled from."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def token_embedding(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings (n, L, text_width) of token ids, before the positional embedding."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def encode_text(self, token_ids: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Text features (n, embed_dim) of token ids."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def encode_text_embeddings(
        self, embeddings: torch.Tensor, eot_index: torch.Tensor, normalize: bool = False
    ) -> torch.Tensor:
        """Text features of prompt embeddings (n, L, text_width), L <= context_length.

        Adds the positional embedding, runs the causal transformer and pools at ``eot_index``.
        Sequences shorter than ``context_length`` are exact whenever every ``eot_index < L``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    # -- image tower ----------------------------------------------------------------------------
    def encode_image(self, pixels: torch.Tensor, normalize: bool = False, preprocess: bool = False) -> torch.Tensor:
        """Image features (B, embed_dim); differentiable with respect to ``pixels``.

        With ``preprocess=True`` pixels are RGB in [0, 1] of any size and are resized and normalised
        inside the graph (image-enhancement methods need gradients through this step).
        """
        raise NotImplementedError

    def image_tokens(self, pixels: torch.Tensor, layers: list[int] | None = None) -> list[torch.Tensor]:
        """Tokens (B, 1 + N, vision_width) after each requested block (default: the last one).

        Block indices count from 0; the final entry of the default list has the final norm applied.
        """
        raise NotImplementedError(f"{type(self).__name__} does not expose image tokens")

    def encode_image_prompted(
        self,
        pixels: torch.Tensor,
        prompts: torch.Tensor | None = None,
        prefixes: list[tuple[torch.Tensor, torch.Tensor] | None] | None = None,
        normalize: bool = False,
    ) -> torch.Tensor:
        """Image features with extra tokens or key/value prefixes in the vision blocks.

        ``prompts`` (B or 1, P, vision_width) are inserted after the class token before the first
        block (VPT-shallow). ``prefixes[i]`` = (keys, values) of shape (B or 1, P_i, vision_width) is
        concatenated to the keys and values of block ``i`` (prefix tuning); ``None`` leaves a block
        unchanged.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support prompted image encoding")
