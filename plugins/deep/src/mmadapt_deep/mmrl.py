"""MMRL (Guo et al., CVPR 2025): a shared representation space projected into the upper blocks of both towers.

K representation tokens ``R`` (``K x d_r``, N(0, 0.02)) are the only free tokens. Before each block
of the chosen range, a Linear(d_r -> width) of that block maps ``R`` to the tower's tokens, which
replace the previous block's ones right after the class token (image) or the start token (text);
after the range they run on. The lower blocks see nothing new, so they stay CLIP's.

The class token's output goes through CLIP's frozen projection, the representation tokens' outputs
(after the final norm, averaged) through a trainable ``width x embed_dim`` projection; both are
compared with the text features of the hand-written prompt ("a photo of a {}.") run with the text
tower's representation tokens. Decoupled inference: on the classes the adapter was trained on, the
logits are ``fusion_weight x class-token logits + (1 - fusion_weight) x representation logits``;
on any other class list (novel classes, another dataset) the class-token logits alone.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Adapter, Backbone, HandwrittenTextFeatures, Task, TokenTower, UserError, prompt_name
from torch import nn

from .config import MmrlConfig

#: The representation tokens sit right after the class token (image) and the start token (text).
AFTER_FIRST_TOKEN = 1


def layer_blocks(key: str, layers: list[int], tower: TokenTower, name: str, hint: str = "") -> list[int]:
    """The 0-based block indices of a 1-based inclusive ``[first, last]`` range, or a ``UserError``.

    ``key`` is the recipe key that set the range, ``name`` the tower in the message.
    """
    first, last = layers
    if last > tower.depth:
        raise UserError(
            f"adapter.{key}={list(layers)} reaches beyond the {name}'s {tower.depth} blocks; "
            f"choose 1 <= first <= last <= {tower.depth}{hint}"
        )
    return list(range(first - 1, last))


class Mmrl(Adapter):
    """MMRL's representation tokens, their per-block projections and the representation-feature projection.

    Trainable: ``tokens`` (K x d_r), one Linear(d_r -> image width) per image block of the range, one
    Linear(d_r -> text width) per text block, and ``representation_projection`` (image width x
    embed_dim). Training outputs carry CLIP's own image and text features of the same inputs when an
    objective asks for them (``report_frozen``, set by the ``mmrl`` objective).
    """

    #: Put ``frozen_image_features`` and ``frozen_text_features`` in the training outputs; the ``mmrl``
    #: objective switches this on, so a plain cross-entropy run pays for no frozen pass.
    report_frozen: bool = False

    def __init__(self, config: MmrlConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        self.image_tower = backbone.require_token_image_tower(
            "adapter: mmrl inserts representation tokens into the image transformer", "use a ViT CLIP backbone"
        )
        self.text_tower = backbone.require_token_text_tower(
            "adapter: mmrl inserts representation tokens into the text transformer", "use a CLIP backbone"
        )
        self.image_blocks = layer_blocks("layers", config.layers, self.image_tower, self.image_tower.name)
        text_key = "text_layers" if config.text_layers is not None else "layers"
        hint = "" if config.text_layers is not None else ", or give the text tower its own adapter.text_layers"
        self.text_blocks = layer_blocks(text_key, config.text_layers or config.layers, self.text_tower,
                                        self.text_tower.name, hint)
        device = next(backbone.parameters()).device
        image_width, text_width = self.image_tower.width, self.text_tower.width
        self.tokens = nn.Parameter(torch.randn(config.n_tokens, config.dimension, device=device) * config.init_std)
        # Every block's projection starts from the same draw, as in MMRL's code (one layer, cloned).
        self.to_image = _clones(nn.Linear(config.dimension, image_width, device=device), len(self.image_blocks))
        self.to_text = _clones(nn.Linear(config.dimension, text_width, device=device), len(self.text_blocks))
        self.representation_projection = nn.Parameter(
            torch.randn(image_width, backbone.embed_dim, device=device) * image_width**-0.5
        )
        #: Whether the text pass computes the positions every prompt shares once (where exact).
        self.share_prefix = True
        self.frozen_text = HandwrittenTextFeatures()
        for name in ("prompt_embeddings", "eot"):
            self.register_buffer(name, None, persistent=False)
        self.trained_classes = tuple(task.classnames)
        self.set_task(task)

    # -- classes --------------------------------------------------------------------------------------
    @property
    def template(self) -> str:
        """The hand-written prompt around each class name: ``adapter.template``, else the dataset's first."""
        return self.config.template or self.task.templates[0]

    def set_task(self, task: Task) -> None:
        """Switch to another class list: their prompts are embedded once; logits fuse only on the trained classes."""
        self.task = task
        tower = self.text_tower
        texts = [self.template.format(prompt_name(name)) for name in task.classnames]
        ids = tower.tokenize(texts)
        eot = tower.eot_index(ids)
        length = int(eot.max()) + 1 if tower.causal else ids.shape[1]
        ids = ids[:, :length]
        with torch.no_grad():
            self.prompt_embeddings = tower.token_embedding(ids)
        self.eot = eot
        # Positions holding the same token in every prompt (the start token and the template's words
        # before the class name): with the representation tokens after the start token, they are one
        # sequence for every class at every block of a causal tower.
        differs = (ids != ids[:1]).any(dim=0).nonzero()
        same = int(differs[0]) if len(differs) else length
        self.shared_positions = min(same, int(eot.min()))
        self.clear_eval_cache()

    @property
    def on_trained_classes(self) -> bool:
        """Whether the current classes are the ones the representation projection was trained on."""
        return tuple(self.task.classnames) == self.trained_classes

    def get_extra_state(self) -> torch.Tensor:
        """The trained class list, saved with the weights: a run evaluated on other data still knows it."""
        return torch.tensor(list(json.dumps(self.trained_classes).encode()), dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore the trained class list of a checkpoint."""
        self.trained_classes = tuple(json.loads(bytes(state.tolist()).decode()))
        self.clear_eval_cache()

    # -- parameters -----------------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``representation``: the tokens and their per-block projections; ``projection``: the
        representation features' projection."""
        shared = [self.tokens, *self.to_image.parameters(), *self.to_text.parameters()]
        return {"representation": shared, "projection": [self.representation_projection]}

    def image_insertions(self) -> dict[int, torch.Tensor]:
        """The image tower's representation tokens ``(1, K, width)`` by 0-based block."""
        return {block: project(self.tokens)[None] for block, project in zip(self.image_blocks, self.to_image)}

    def text_insertions(self) -> dict[int, torch.Tensor]:
        """The text tower's representation tokens ``(1, K, width)`` by 0-based block."""
        return {block: project(self.tokens)[None] for block, project in zip(self.text_blocks, self.to_text)}

    # -- towers ---------------------------------------------------------------------------------------
    def encode_text(self, insert: dict[int, torch.Tensor]) -> torch.Tensor:
        """Normalised text features ``(n_classes, embed_dim)`` of the class prompts with ``insert`` tokens.

        On a tower that shares prefixes, the positions every prompt holds alike run once (exact).
        """
        tower, prompts, shared = self.text_tower, self.prompt_embeddings, self.shared_positions
        if self.share_prefix and tower.shares_prefixes:
            features = tower.encode_shared_prefix(prompts[:1, :shared], prompts[:, shared:], self.eot,
                                                  insert=insert, insert_at=AFTER_FIRST_TOKEN)
        else:
            run = tower.run(tower.embed(prompts), insert=insert, insert_at=AFTER_FIRST_TOKEN)
            features = tower.head(run.tokens, self.eot)
        return F.normalize(features, dim=-1)

    def encode_image(self, pixels: torch.Tensor, insert: dict[int, torch.Tensor],
                     frozen: bool = False) -> dict[str, torch.Tensor]:
        """Normalised image features of ``pixels`` with ``insert`` tokens.

        ``class``: the class token through the frozen projection; ``representation`` (when tokens
        were inserted): the mean of the tokens' outputs after the final norm, through the trainable
        projection; ``frozen`` (when asked): CLIP's own features, which share every block before the
        first insertion with this pass.
        """
        tower = self.image_tower
        tokens = tower.embed(pixels)
        start = min(insert, default=0)
        layers = [start - 1, tower.depth - 1] if frozen and start > 0 else None
        run = tower.run(tokens, insert=insert, insert_at=AFTER_FIRST_TOKEN, layers=layers)
        features = {"class": F.normalize(tower.head(run.tokens), dim=-1)}
        if run.inserted is not None:
            pooled = tower.final_norm(run.inserted).mean(dim=1)
            features["representation"] = F.normalize(pooled @ self.representation_projection.to(pooled.dtype), dim=-1)
        if frozen:
            with torch.no_grad():
                stream = run.layers[0].detach() if layers else tokens
                for block in tower.blocks[start:] if layers else tower.blocks:
                    stream = block(stream)
                features["frozen"] = F.normalize(tower.head(stream), dim=-1)
        return features

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Class-token, representation and decoupled logits of the batch's images against the class prompts."""
        frozen = self.training and self.report_frozen
        image = self.encode_image(batch["image"], self.image_insertions(), frozen=frozen)
        text = self.cached_in_eval("text_features", lambda: self.encode_text(self.text_insertions()))
        text = text.to(image["class"].dtype)
        scale = self.backbone.logit_scale
        class_logits = scale * image["class"] @ text.t()
        representation_logits = scale * image["representation"] @ text.t()
        if self.on_trained_classes:
            weight = self.config.fusion_weight
            logits = weight * class_logits + (1 - weight) * representation_logits
        else:
            logits = class_logits
        outputs = {"logits": logits, "class_logits": class_logits, "representation_logits": representation_logits,
                   "features": image["class"], "representation_features": image["representation"],
                   "text_features": text}
        if frozen:
            outputs["frozen_image_features"] = image["frozen"]
            outputs["frozen_text_features"] = self.frozen_text(self.backbone, self.task.classnames, [self.template])
        return outputs


def _clones(layer: nn.Linear, count: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(layer) for _ in range(count))
