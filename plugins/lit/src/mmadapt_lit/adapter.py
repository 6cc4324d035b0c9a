"""The lit adapters: an enhancement network plus its CLIP guidance (prompt pair, latent pair or residual).

Parameter groups: ``network`` (the enhancer) and, for ``clip-lit`` and ``clip-lit-latent``,
``prompts``. ``forward`` enhances ``batch["image"]`` (a tensor or a list of differently sized
images) into ``outputs["images"]``; a batch of augmented views ``batch["views"]`` (the prompt
stages) gives ``outputs["prompt_logits"]`` instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Adapter, Backbone, Section, Task, UserError
from torch import nn

from .config import ClipLitConfig, ClipLitLatentConfig, EnhancerConfig, RaveConfig
from .losses import identity_loss, prompt_logits
from .networks import build_network

#: Identity-loss levels by default, and the weight of the deepest (CLIP-LIT: colour-heavy) level.
DEFAULT_LEVELS = 5
DEEPEST_WEIGHT = 0.5

Images = torch.Tensor | list[torch.Tensor]


def default_levels(depth: int) -> list[int]:
    """Five evenly spaced levels of a tower with ``depth`` levels, deduplicated (all of them when fewer)."""
    if depth <= DEFAULT_LEVELS:
        return list(range(depth))
    return sorted({round(i * (depth - 1) / (DEFAULT_LEVELS - 1)) for i in range(DEFAULT_LEVELS)})


class LitAdapter(Adapter):
    """An enhancement network trained with CLIP guidance and a multi-level identity loss on a frozen tower."""

    #: ``rave``, ``clip-lit`` or ``clip-lit-latent``.
    guidance: str = ""

    def __init__(self, config: EnhancerConfig, backbone: Backbone, task: Task) -> None:
        if task.kind != "image-to-image":
            raise UserError(
                f"adapter {self.guidance} needs an image-to-image task; the task {task.name or ''} is {task.kind}. "
                "Use paired-folders, unpaired-folders or shapes task backlit-pairs"
            )
        super().__init__(config, backbone, task)
        self.network = build_network(config.network)
        # Held outside the module tree: a frozen second model must not enter checkpoints or the groups.
        self._identity_tower = (_identity_backbone(config.identity_backbone) or backbone,)
        self.levels = self._identity_levels(config.identity_levels)
        #: L_id weights of the enhancement stages (1, ..., 1, 0.5); the warm-up weighs every level 1.
        self.level_weights = [1.0] * (len(self.levels) - 1) + [DEEPEST_WEIGHT]

    @property
    def identity_tower(self) -> Backbone:
        """The image tower of the identity loss: ``identity_backbone`` when given, else the backbone."""
        return self._identity_tower[0]

    def _identity_levels(self, levels: list[int] | None) -> list[int]:
        if levels is not None:
            return list(levels)
        size = self.identity_tower.preprocessing.size
        with torch.no_grad():
            depth = len(self.identity_tower.image.intermediates(torch.zeros(1, 3, size, size)))
        return default_levels(depth)

    # -- groups ---------------------------------------------------------------------------------
    def guidance_parameters(self) -> list[nn.Parameter]:
        """The trainable guidance parameters (the prompt pair or latent pair); none for RAVE."""
        return []

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``network`` and, when the guidance learns, ``prompts``."""
        groups = {"network": [p for p in self.network.parameters() if p.requires_grad]}
        if self.guidance_parameters():
            groups["prompts"] = self.guidance_parameters()
        return groups

    def reset_network(self, seed: int) -> None:
        """Re-initialise the network in place from ``seed`` (the warm-up restart rule)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            fresh = build_network(self.config.network)
        self.network.load_state_dict(fresh.state_dict())

    # -- images ---------------------------------------------------------------------------------
    def enhance(self, images: Images) -> Images:
        """The network on a (B, 3, H, W) batch or on each image of a list; the same sizes out."""
        if isinstance(images, list):
            return [self.network(image.unsqueeze(0)).squeeze(0) for image in images]
        return self.network(images)

    def embed(self, images: Images) -> torch.Tensor:
        """Unit-norm image features (B, D), resized and normalised in the graph; differentiable."""
        if isinstance(images, list):
            return torch.cat([self.embed(image.unsqueeze(0)) for image in images])
        return self.backbone.encode_image(images, normalize=True, preprocess=True).float()

    def intermediates(self, images: Images) -> list[torch.Tensor]:
        """The identity loss's levels of the image tower (one image at a time for a list)."""
        if isinstance(images, list):
            parts = [self.intermediates(image.unsqueeze(0)) for image in images]
            return [torch.cat(level) for level in zip(*parts)]
        tower = self.identity_tower.to(images.device)
        levels = tower.image.intermediates(tower.prepare_pixels(images), self.levels)
        return [level.float() for level in levels]

    def identity(self, outputs: Images, inputs: Images, weights: list[float] | None = None) -> torch.Tensor:
        """L_id between enhanced images and their inputs (input features carry no gradient)."""
        with torch.no_grad():
            reference = self.intermediates(inputs)
        return identity_loss(self.intermediates(outputs), reference, weights or self.level_weights)

    # -- guidance -------------------------------------------------------------------------------
    def prompt_features(self) -> torch.Tensor:
        """Unit-norm features (2, D) of the negative (backlit) and positive (well-lit) prompts."""
        raise UserError(f"adapter {self.guidance} has no prompts")

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Enhanced ``images``, or ``prompt_logits`` (B, R, 2) = 100 cos(Φ(view), T) of ``views`` (B, R, 3, S, S)."""
        if "views" in batch:
            views = batch["views"]
            with torch.no_grad():  # the views are data: only the prompts learn from them
                features = self.embed(views.flatten(0, 1)).view(*views.shape[:2], -1)
            return {"prompt_logits": prompt_logits(features, self.prompt_features())}
        return {"images": self.enhance(batch["image"])}


def _identity_backbone(section: Section | None) -> Backbone | None:
    """The second backbone of the identity loss, built from its recipe section (frozen), or None."""
    return section.build() if section is not None else None


class RaveAdapter(LitAdapter):
    """``rave``: the residual vector v_res and its target t are buffers the protocol sets from the data."""

    paper = ("Gaintseva et al., RAVE: Residual Vector Embedding for CLIP-Guided Backlit Image Enhancement,"
             " ECCV 2024")

    guidance = "rave"

    def __init__(self, config: RaveConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        if config.shifted and backbone.text is None:
            raise UserError(
                f"adapter.shifted: RAVE-shifted ranks vocabulary tokens with the text tower, and "
                f"{backbone.name} has none; set adapter.shifted=false"
            )
        self.register_buffer("residual", torch.zeros(backbone.embed_dim))
        self.register_buffer("residual_target", torch.zeros(()))

    @property
    def has_residual(self) -> bool:
        """Whether the residual was computed (a zero vector until then)."""
        return bool(self.residual.abs().sum() > 0)

    def set_residual(self, residual: torch.Tensor, target: torch.Tensor) -> None:
        """Use ``residual`` (unit norm, (D,)) and its target ``t`` from now on."""
        self.residual.copy_(residual.to(self.residual))
        self.residual_target.copy_(target.to(self.residual_target))


class ClipLitAdapter(LitAdapter):
    """``clip-lit``: two learned prompts in token space; each prompt's whole embedding sequence trains."""

    paper = "Liang et al., Iterative Prompt Learning for Unsupervised Backlit Image Enhancement, ICCV 2023"

    guidance = "clip-lit"

    def __init__(self, config: ClipLitConfig, backbone: Backbone, task: Task) -> None:
        backbone.require_token_text_tower(
            "adapter clip-lit learns text prompts", "use adapter clip-lit-latent (joint-space vectors) or rave"
        )
        super().__init__(config, backbone, task)
        ids = backbone.text.tokenize([" ".join([config.init_word] * config.init_repeats)])
        with torch.no_grad():
            embedding = backbone.text.token_embedding(ids).float()
        self.prompts = nn.Parameter(embedding.repeat(2, 1, 1).clone())
        self.register_buffer("eot", backbone.text.eot_index(ids).repeat(2), persistent=False)

    def guidance_parameters(self) -> list[nn.Parameter]:
        """The prompt pair (2, context_length, text_width)."""
        return [self.prompts]

    def prompt_features(self) -> torch.Tensor:
        """The text pass from the learned embeddings (cut after the end token where exact)."""
        embeddings = self.prompts
        if self.backbone.text.causal:
            embeddings = embeddings[:, : int(self.eot.max()) + 1]
        return F.normalize(self.backbone.text.encode_embeddings(embeddings, self.eot), dim=-1).float()


class ClipLitLatentAdapter(LitAdapter):
    """``clip-lit-latent``: two free joint-space vectors (randn init); no text tower needed."""

    paper = ("Gaintseva et al., RAVE: Residual Vector Embedding for CLIP-Guided Backlit Image Enhancement,"
             " ECCV 2024 (its CLIP-LIT-Latent baseline)")

    guidance = "clip-lit-latent"

    def __init__(self, config: ClipLitLatentConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        self.prompts = nn.Parameter(torch.randn(2, backbone.embed_dim))

    def guidance_parameters(self) -> list[nn.Parameter]:
        """The two vectors (2, embed_dim)."""
        return [self.prompts]

    def prompt_features(self) -> torch.Tensor:
        """The two vectors, normalised."""
        return F.normalize(self.prompts, dim=-1)
