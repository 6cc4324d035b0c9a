"""The ``atlas`` adapter: task vectors composed over the frozen image tower with learned block-wise coefficients.

aTLAS (Zhang et al., "Knowledge Composition using Task Vectors with Learned Anisotropic Scaling",
NeurIPS 2024)::

    theta_b = theta0_b + sum_i lambda_i^(b) * tau_i^(b)       one coefficient per block b and vector i
    logits  = logit_scale * cos(image_tower(x; theta), t_c)    t_c: frozen zero-shot text features

The coefficients start at 0, so the untrained adapter is the pre-trained model. ``isotropic`` shares
one coefficient per vector across blocks; ``partitions: K`` splits every block into K fixed random
parts with a coefficient each. The composed weights go to the tower through
``torch.func.functional_call``: the tower's own forward runs on them and nothing is copied into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from mmadapt import Adapter, Backbone, Task, UserError, ZeroShotClasses
from torch import nn
from torch.func import functional_call

from .config import AtlasConfig
from .vectors import base_identity, check_base, load_vector, local_names


class Atlas(ZeroShotClasses, Adapter):
    """Learned coefficients ``(vectors, blocks, K)`` over task vectors kept as frozen buffers."""

    paper = ("Zhang et al., Knowledge Composition using Task Vectors with Learned Anisotropic Scaling,"
             " NeurIPS 2024")

    #: forward() scores ``batch["strong_image"]`` too, as ``strong_logits`` (``atlas-tta``'s strong view).
    scores_strong_views = True

    def __init__(self, config: AtlasConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        backbone.require_text_tower("adapter atlas classifies with zero-shot text features", "use a CLIP backbone")
        blocks = backbone.image.parameter_blocks()
        module_names = local_names(backbone.image.module, blocks)
        identity = base_identity(backbone)
        vectors = []
        for path in config.vectors:
            vector = load_vector(path)
            check_base(vector, path, backbone, identity)
            if vector.task and vector.task == task.name and not config.allow_own_task:
                raise UserError(f"task vector {path} was fine-tuned on this run's own task {task.name!r}; aTLAS "
                                "composes the other tasks' vectors (adapter.allow_own_task: true composes it anyway)")
            vectors.append(vector)
        #: (block name, the tower module's name for it), in the tower's order.
        self.block_names = [(name, module_names[name]) for name in blocks]
        self.vector_sources = [Path(path).name for path in config.vectors]
        dtype = _widest([t.dtype for v in vectors for t in v.tensors.values()])
        # One frozen (vectors, *block shape) stack per block, in the dtype the files hold.
        self.bank = nn.Module()
        for index, (name, _) in enumerate(self.block_names):
            stack = torch.stack([v.tensors[name].to(dtype) for v in vectors])
            self.bank.register_buffer(f"block{index}", stack, persistent=False)
        parts = config.partitions
        for index, (name, _) in enumerate(self.block_names):
            if parts > 1:
                generator = torch.Generator().manual_seed(config.partition_seed * 1_000_003 + index)
                part = torch.randint(parts, blocks[name].shape, generator=generator).to(torch.uint8)
                self.bank.register_buffer(f"part{index}", part, persistent=False)
        shape = (len(vectors), 1, 1) if config.isotropic else (len(vectors), len(self.block_names), parts)
        self.coefficients = nn.Parameter(torch.zeros(shape))
        self.set_task(task)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """One group, ``coefficients``: ``(vectors, blocks, K)``, or ``(vectors, 1, 1)`` when isotropic."""
        return {"coefficients": [self.coefficients]}

    def composed_weights(self) -> dict[str, torch.Tensor]:
        """Every block as ``theta0 + sum_i lambda_i tau_i`` (in the base weights' dtype), by block name."""
        blocks = self.backbone.image.parameter_blocks()
        composed = {}
        for index, (name, _) in enumerate(self.block_names):
            base = blocks[name]
            stack = self.bank.get_buffer(f"block{index}")
            coefficients = self.coefficients[:, 0 if self.config.isotropic else index]  # (vectors, K)
            if self.config.partitions > 1:
                scale = coefficients[:, self.bank.get_buffer(f"part{index}").long()]  # (vectors, *block shape)
            else:
                scale = coefficients[:, 0].reshape(-1, *([1] * base.dim()))
            composed[name] = base + (scale * stack).sum(0).to(base.dtype)
        return composed

    def exported_files(self) -> dict[str, list[str]]:
        """The task vector files: an export carries them, since the coefficients mean nothing without them."""
        return {"vectors": [str(path) for path in self.config.vectors]}

    def merged_backbone_state(self) -> dict[str, torch.Tensor]:
        """The base model's weights with every image-tower block replaced by its composed weight."""
        from .merge import merged_state_dict

        return merged_state_dict(self)[0]

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``logits`` (and ``features``) of the composed image tower; ``strong_logits`` of ``batch["strong_image"]``."""
        images = batch["image"]
        strong = batch.get("strong_image")
        pixels = images if strong is None else torch.cat([images, strong])
        weights = {local: tensor for (name, local), tensor in zip(self.block_names, self.composed_weights().values())}
        features = functional_call(self.backbone.image.module, weights, (pixels,))
        features = features[0] if isinstance(features, tuple) else features
        features = features / features.norm(dim=-1, keepdim=True)
        logits = self.backbone.logit_scale * features @ self.class_embeddings.to(features.dtype).t()
        size = images.shape[0]
        outputs = {"logits": logits[:size], "features": features[:size]}
        if strong is not None:
            outputs["strong_logits"] = logits[size:]
        return outputs

    def coefficient_table(self) -> dict[str, list]:
        """The learned coefficients by vector file: per block (``[K]`` each), or one per vector when isotropic."""
        values = self.coefficients.detach().cpu()
        return {source: values[i].tolist() for i, source in enumerate(self.vector_sources)}


def _widest(dtypes: list[torch.dtype]) -> torch.dtype:
    """fp32 when any vector is, else the vectors' common dtype (fp16 vectors stay fp16 in memory)."""
    kinds = set(dtypes)
    return next(iter(kinds)) if len(kinds) == 1 else torch.float32
