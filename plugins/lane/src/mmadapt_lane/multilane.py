"""``multi-lane``: one lane per task over summarised patch tokens of a frozen ViT, and a shared head.

De Min et al., "Less is more: Summarizing Patch Tokens for efficient Multi-Label Class-Incremental
Learning" (CoLLAs 2024). Every task's selectors, key/value prompts (and key) are slices of
preallocated tensors; while task t trains only lane t runs, and its logits are masked to task t's
class block, so every other slice and head row gets a gradient of exactly zero.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from mmadapt import Backbone, Task
from torch import nn

from .incremental import IncrementalAdapter, linear_head, reference_orthogonal
from .lanes import check_prompt_layers, class_token, frozen_tokens, lane_block


class MultiLane(IncrementalAdapter):
    """Task lanes next to the frozen image stream; logits of every seen lane, each on its own classes.

    While a task trains only its lane runs; evaluation runs every served lane (``inference: concat``)
    or, per image, the lane whose key matches best (``inference: task``).
    """

    paper = ("De Min et al., Less is more: Summarizing Patch Tokens for efficient Multi-Label "
             "Class-Incremental Learning, CoLLAs 2024")

    def __init__(self, config: Any, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        check_prompt_layers(backbone, config.prompt_layers, "adapter multi-lane")
        tasks, width = self.num_tasks, backbone.image.width
        self.num_selectors = config.num_selectors if config.summary == "selectors" else 0
        if self.num_selectors:
            self.selectors = nn.Parameter(reference_orthogonal(tasks, self.num_selectors, width))
        self.prompted_layers = config.prompt_layers if config.prompt_length else 0
        if self.prompted_layers:
            # (L_p, keys/values, T, P, width): width is heads x head_dim, as the prefix contract takes it.
            # Each layer's (keys/values, T, P, width) tensor is initialised as one, as the reference does.
            self.prompts = nn.Parameter(
                torch.stack(
                    [reference_orthogonal(2, tasks, config.prompt_length, width) for _ in range(self.prompted_layers)]
                )
            )
        if config.inference == "task":
            self.keys = nn.Parameter(reference_orthogonal(tasks, width))
        self.head = linear_head(width, task.n_classes)

    def _begin(self, index: int) -> None:
        """With ``warm_start``, task ``index``'s selectors, prompts (and key) start as task index-1's."""
        if self.config.warm_start and index > 0:
            with torch.no_grad():
                for tensor in self._slices():
                    tensor[index].copy_(tensor[index - 1])

    def _slices(self) -> list[torch.Tensor]:
        """Every per-task tensor, indexed by task along its first dimension (views of the parameters)."""
        slices = []
        if self.num_selectors:
            slices.append(self.selectors.data)
        if self.prompted_layers:
            slices.append(self.prompts.data.transpose(0, 2))  # (T, keys/values, L_p, P, width)
        if self.config.inference == "task":
            slices.append(self.keys.data)
        return slices

    # -- the engine's calls ---------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``lanes``: selectors, prompts (and keys) of every task; ``head``: the shared linear head."""
        lanes = [getattr(self, name) for name in ("selectors", "prompts", "keys") if hasattr(self, name)]
        return {"lanes": lanes, "head": list(self.head.parameters())}

    def parameter_counts(self) -> dict[str, int]:
        """``trainable``, ``total``, ``per_task`` (one lane's slices) and ``head``."""
        lanes = sum(p.numel() for p in self.parameter_groups()["lanes"])
        return {
            **super().parameter_counts(),
            "per_task": lanes // self.num_tasks,
            "head": sum(p.numel() for p in self.head.parameters()),
        }

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Logits ``(B, n_classes)``: the current lane while training a task, every seen lane otherwise."""
        pixels = batch["image"]
        training_one = self.training and self.current is not None
        lanes = [self.current] if training_one else list(range(self.seen))
        groups = [lanes] if self.config.batch_lanes else [[lane] for lane in lanes]
        frozen = frozen_tokens(self.backbone, pixels)
        blocks = self.backbone.image.blocks
        if self.config.summary == "full":
            streams = [frozen.repeat(len(group), 1, 1) for group in groups]
        else:
            streams = [self._lane_input(group, len(pixels), frozen.dtype) for group in groups]
        for index, block in enumerate(blocks):
            context = block.norm1(frozen).detach() if self.config.summary != "full" else None
            streams = [
                self._block(block, index, stream, context, group, len(pixels)) for stream, group in zip(streams, groups)
            ]
            needs_frozen = self.config.summary != "full" or self.config.inference == "task"
            if needs_frozen and (index + 1 < len(blocks) or self.config.inference == "task"):
                with torch.no_grad():
                    frozen = block(frozen)
        lane_logits = torch.cat(
            [self._logits(stream).view(len(group), len(pixels), -1) for stream, group in zip(streams, groups)]
        )
        outputs: dict[str, torch.Tensor] = {}
        if self.config.inference == "task":
            query = F.normalize(self.backbone.image.final_norm(frozen[:, :1])[:, 0], dim=-1).detach()
            similarity = query @ F.normalize(self.keys[lanes], dim=-1).t()  # (B, lanes)
            if training_one:
                outputs["key_loss"] = -self.config.key_weight * similarity[:, 0].mean()
            else:
                return {"logits": self._chosen_lane_logits(lane_logits, similarity.argmax(dim=1))}
        outputs["logits"] = self._concatenated(lane_logits, lanes)
        return outputs

    # -- pieces ---------------------------------------------------------------------------------
    def _lane_input(self, group: list[int], batch: int, dtype: torch.dtype) -> torch.Tensor:
        """(len(group) * B, 1 + S, width): the class token and each lane's selectors, lane-major."""
        token = class_token(self.backbone).to(dtype).view(1, 1, 1, -1).expand(len(group), batch, 1, -1)
        if self.num_selectors:
            selectors = self.selectors[group].to(dtype).unsqueeze(1).expand(-1, batch, -1, -1)
            token = torch.cat([token, selectors], dim=2)
        return token.reshape(len(group) * batch, token.shape[2], token.shape[3])

    def _prefix(self, layer: int, group: list[int], batch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        if layer >= self.prompted_layers:
            return None
        keys, values = self.prompts[layer][:, group]  # each (len(group), P, width)
        if len(group) == 1:
            return keys, values
        return tuple(t.unsqueeze(1).expand(-1, batch, -1, -1).reshape(-1, *t.shape[1:]) for t in (keys, values))

    def _block(self, block, layer: int, stream, context, group: list[int], batch: int) -> torch.Tensor:
        prefix = self._prefix(layer, group, batch)
        if self.config.summary == "full":
            return block(stream, prefix)
        if len(group) > 1:
            context = context.repeat(len(group), 1, 1)  # lane-major, as the streams
        return lane_block(
            block,
            stream,
            context,
            prefix,
            self.config.summary,
            self.config.num_selectors,
            self.config.drop_and_replace,
            summarise=self.config.drop_and_replace or layer == 0,
        )

    def _logits(self, stream: torch.Tensor) -> torch.Tensor:
        """Head logits (lanes * B, n_classes) of the lanes' class tokens after the final norm."""
        token = self.backbone.image.final_norm(stream[:, :1])[:, 0]
        if self.config.prehead_norm:
            token = F.normalize(token, dim=-1)
        return self.head(token)

    def _concatenated(self, lane_logits: torch.Tensor, lanes: list[int]) -> torch.Tensor:
        """Each lane's logits on its own class block; 0 for classes of lanes that did not run."""
        out = torch.zeros_like(lane_logits[0])
        for logits, lane in zip(lane_logits, lanes):
            out = torch.where(self.class_masks[lane], logits, out)
        return out

    def _chosen_lane_logits(self, lane_logits: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Per image, the chosen lane's logits on every served class (as the reference), 0 elsewhere."""
        chosen = lane_logits[choice, torch.arange(len(choice), device=choice.device)]
        return torch.where(self.seen_mask(), chosen, torch.zeros_like(chosen))

